#include "isa.h"

namespace troupe {
namespace {

struct IsaInfo {
  Isa isa;
  const char* name;
  // Features the ISA's translation unit is compiled for (CMakeLists.txt).
  bool (*has)(const CpuFeatures&);
  const char* needs;  // for messages
  bool opt_in;        // never chosen by best_isa
};

bool has_avx2(const CpuFeatures& c) { return c.avx2 && c.fma && c.f16c; }
bool has_avx512(const CpuFeatures& c) { return has_avx2(c) && c.avx512f && c.avx512bw && c.avx512vl; }
bool has_avx512bf16(const CpuFeatures& c) { return has_avx512(c) && c.avx512dq && c.avx512bf16; }
bool has_amx(const CpuFeatures& c) { return has_avx512bf16(c) && c.amx_tile && c.amx_bf16; }
bool has_nothing(const CpuFeatures&) { return true; }

// Indexed by Isa: the automatic paths best first, then the opt-in ones.
const IsaInfo kIsas[kIsaCount] = {
    {Isa::Avx512Bf16, "avx512bf16", has_avx512bf16,
     "avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512dq, avx512bf16", false},
    {Isa::Avx512, "avx512", has_avx512, "avx2, fma, f16c, avx512f, avx512bw, avx512vl", false},
    {Isa::Avx2, "avx2", has_avx2, "avx2, fma, f16c", false},
    {Isa::Scalar, "scalar", has_nothing, "", false},
    {Isa::Amx, "amx", has_amx,
     "avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512dq, avx512bf16, amx_tile, amx_bf16", true},
};

}  // namespace

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
  for (const IsaInfo& info : kIsas) s += (s.empty() ? "" : ", ") + std::string(info.name);
  return s;
}

bool isa_supported(Isa isa, const CpuFeatures& cpu) {
#if !defined(TROUPE_X86)
  if (isa != Isa::Scalar) return false;
#endif
  return kIsas[static_cast<int>(isa)].has(cpu);
}

Isa best_isa(const CpuFeatures& cpu) {
  for (const IsaInfo& info : kIsas)
    if (!info.opt_in && isa_supported(info.isa, cpu)) return info.isa;
  return Isa::Scalar;
}

std::string missing_features(Isa isa, const CpuFeatures& cpu) {
#if !defined(TROUPE_X86)
  if (isa != Isa::Scalar) return "x86-64 (this build has scalar kernels only)";
#endif
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
