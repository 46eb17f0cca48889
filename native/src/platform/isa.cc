#include "platform/isa.h"

namespace troupe {
namespace {

struct IsaInfo {
  Isa isa;
  const char* name;
  // Features the ISA's translation unit is compiled for (CMakeLists.txt).
  bool (*has)(const CpuFeatures&);
  const char* needs;  // for messages
};

bool has_avx2(const CpuFeatures& c) { return c.avx2 && c.fma && c.f16c; }
bool has_avx512(const CpuFeatures& c) { return has_avx2(c) && c.avx512f && c.avx512bw && c.avx512vl; }
bool has_avx512bf16(const CpuFeatures& c) { return has_avx512(c) && c.avx512dq && c.avx512bf16; }
bool has_neon(const CpuFeatures& c) { return c.asimd; }
bool has_neon_bf16(const CpuFeatures& c) { return has_neon(c) && c.bf16; }
bool has_amx(const CpuFeatures& c) { return has_avx512bf16(c) && c.amx_tile && c.amx_bf16; }
bool has_nothing(const CpuFeatures&) { return true; }

// Whether this build compiled `isa`'s translation units (CMakeLists.txt).
bool built(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return true;
#if defined(TROUPE_X86)
    case Isa::Avx512Bf16: case Isa::Avx512: case Isa::Avx2: case Isa::Amx: return true;
#endif
#if defined(TROUPE_ARM64)
    case Isa::NeonBf16: case Isa::Neon: return true;
#endif
    default: return false;
  }
}

// Indexed by Isa (kIsaPreference gives the order of preference).
const IsaInfo kIsas[kIsaCount] = {
    {Isa::Avx512Bf16, "avx512bf16", has_avx512bf16,
     "avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512dq, avx512bf16"},
    {Isa::Avx512, "avx512", has_avx512, "avx2, fma, f16c, avx512f, avx512bw, avx512vl"},
    {Isa::Avx2, "avx2", has_avx2, "avx2, fma, f16c"},
    {Isa::Scalar, "scalar", has_nothing, ""},
    {Isa::Amx, "amx", has_amx,
     "avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512dq, avx512bf16, amx_tile, amx_bf16"},
    {Isa::NeonBf16, "neon-bf16", has_neon_bf16, "asimd, bf16"},
    {Isa::Neon, "neon", has_neon, "asimd"},
};

}  // namespace

// Automatic paths best first, then the opt-in ones (best_isa stops at scalar).
const Isa kIsaPreference[kIsaCount] = {Isa::Avx512Bf16, Isa::Avx512, Isa::Avx2, Isa::NeonBf16,
                                       Isa::Neon,       Isa::Scalar, Isa::Amx};

const char* isa_name(Isa isa) { return kIsas[static_cast<int>(isa)].name; }

bool parse_isa(const std::string& name, Isa* out) {
  for (const IsaInfo& info : kIsas) {
    if (name == info.name) {
      *out = info.isa;
      return true;
    }
  }
  return false;
}

std::string isa_names_list() {
  std::string s;
  for (Isa isa : kIsaPreference) s += (s.empty() ? "" : ", ") + std::string(isa_name(isa));
  return s;
}

bool isa_supported(Isa isa, const CpuFeatures& cpu) {
  return built(isa) && kIsas[static_cast<int>(isa)].has(cpu);
}

Isa best_isa(const CpuFeatures& cpu) {
  for (Isa isa : kIsaPreference) {
    if (isa == Isa::Scalar) break;  // what follows is opt-in
    if (isa_supported(isa, cpu)) return isa;
  }
  return Isa::Scalar;
}

std::string missing_features(Isa isa, const CpuFeatures& cpu) {
  if (!built(isa)) {
#if defined(TROUPE_X86)
    return "ARM64 (this x86-64 build has no ARM kernels)";
#elif defined(TROUPE_ARM64)
    return "x86-64 (this ARM64 build has no x86 kernels)";
#else
    return "x86-64 or ARM64 (this build has scalar kernels only)";
#endif
  }
  std::string needs = kIsas[static_cast<int>(isa)].needs, missing;
  for (int i = 0; i < kCpuFeatureFieldCount; ++i) {
    const CpuFeatureField& f = kCpuFeatureFields[i];
    const std::string name = f.name;
    // Match whole names inside the comma-separated list.
    const std::string padded = ", " + needs + ",";
    if (padded.find(", " + name + ",") != std::string::npos && !(cpu.*f.flag))
      missing += (missing.empty() ? "" : ", ") + name;
  }
  return missing;
}

std::string present_features(const CpuFeatures& cpu) {
  std::string s;
  for (int i = 0; i < kCpuFeatureFieldCount; ++i)
    if (cpu.*kCpuFeatureFields[i].flag) s += (s.empty() ? "" : ", ") + std::string(kCpuFeatureFields[i].name);
  return s.empty() ? "none" : s;
}

}  // namespace troupe
