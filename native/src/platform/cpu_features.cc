#include "platform/cpu_features.h"

#include <cstdlib>
#include <string>

#if defined(TROUPE_X86)
#include <cpuid.h>
#include <cstdint>
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

namespace troupe {

const CpuFeatureField kCpuFeatureFields[] = {
    {"avx2", &CpuFeatures::avx2},         {"fma", &CpuFeatures::fma},
    {"f16c", &CpuFeatures::f16c},         {"avx512f", &CpuFeatures::avx512f},
    {"avx512bw", &CpuFeatures::avx512bw}, {"avx512vl", &CpuFeatures::avx512vl},
    {"avx512dq", &CpuFeatures::avx512dq}, {"avx512bf16", &CpuFeatures::avx512bf16},
    {"avx512vbmi", &CpuFeatures::avx512vbmi},
    {"amx_tile", &CpuFeatures::amx_tile}, {"amx_bf16", &CpuFeatures::amx_bf16},
    {"asimd", &CpuFeatures::asimd},       {"bf16", &CpuFeatures::bf16},
};
const int kCpuFeatureFieldCount = sizeof(kCpuFeatureFields) / sizeof(kCpuFeatureFields[0]);

#if defined(TROUPE_X86)
namespace {

// XCR0 via the xgetbv instruction (inline asm, so this baseline TU needs no -mxsave).
uint64_t read_xcr0() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

bool bit(uint32_t reg, int n) { return (reg >> n) & 1u; }

}  // namespace

CpuFeatures detect_cpu_features() {
  CpuFeatures f;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf < 1) return f;

  __cpuid(1, eax, ebx, ecx, edx);
  const bool cpu_fma = bit(ecx, 12), osxsave = bit(ecx, 27), cpu_avx = bit(ecx, 28),
             cpu_f16c = bit(ecx, 29);
  if (!osxsave || !cpu_avx) return f;

  const uint64_t xcr0 = read_xcr0();
  const bool os_avx = (xcr0 & 0x6) == 0x6;            // XMM | YMM state
  const bool os_avx512 = os_avx && (xcr0 & 0xE0) == 0xE0;  // opmask | ZMM_Hi256 | Hi16_ZMM
  if (!os_avx) return f;
  f.fma = cpu_fma;
  f.f16c = cpu_f16c;

  if (max_leaf < 7) return f;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const unsigned leaf7_max_subleaf = eax;
  f.avx2 = bit(ebx, 5);
  const bool os_amx = (xcr0 & 0x60000) == 0x60000;  // XTILECFG (17) | XTILEDATA (18)
  if (os_amx) {
    f.amx_bf16 = bit(edx, 22);
    f.amx_tile = bit(edx, 24);
  }
  if (os_avx512) {
    f.avx512f = bit(ebx, 16);
    f.avx512dq = bit(ebx, 17);
    f.avx512bw = bit(ebx, 30);
    f.avx512vl = bit(ebx, 31);
    f.avx512vbmi = f.avx512f && bit(ecx, 1);
    if (leaf7_max_subleaf >= 1) {
      __cpuid_count(7, 1, eax, ebx, ecx, edx);
      f.avx512bf16 = f.avx512f && bit(eax, 5);
    }
  }
  return f;
}

#elif defined(__aarch64__) && defined(__linux__)

// Bit numbers of the Linux arm64 uapi (asm/hwcap.h); spelled out so older headers build.
constexpr unsigned long kHwcapAsimd = 1ul << 1;  // HWCAP_ASIMD
constexpr unsigned long kHwcap2Bf16 = 1ul << 14;  // HWCAP2_BF16

CpuFeatures detect_cpu_features() {
  CpuFeatures f;
  const unsigned long hwcap = getauxval(AT_HWCAP), hwcap2 = getauxval(AT_HWCAP2);
  f.asimd = (hwcap & kHwcapAsimd) != 0;
  f.bf16 = f.asimd && (hwcap2 & kHwcap2Bf16) != 0;
  return f;
}

#elif defined(__aarch64__) && defined(__APPLE__)

namespace {
bool sysctl_flag(const char* name) {
  int v = 0;
  size_t len = sizeof v;
  return sysctlbyname(name, &v, &len, nullptr, 0) == 0 && v != 0;
}
}  // namespace

CpuFeatures detect_cpu_features() {
  CpuFeatures f;
  // Every Apple arm64 CPU has Advanced SIMD; the key is checked all the same.
  f.asimd = sysctl_flag("hw.optional.AdvSIMD") || sysctl_flag("hw.optional.neon");
  f.bf16 = f.asimd && sysctl_flag("hw.optional.arm.FEAT_BF16");
  return f;
}

#else   // neither x86-64 nor ARM64: only the scalar kernels exist

CpuFeatures detect_cpu_features() { return CpuFeatures{}; }

#endif

CpuFeatures cap_cpu_features(const CpuFeatures& detected, const char* cap) {
  // Whole names only: blanks dropped, then ",name," looked up in ",cap,".
  std::string list = ",";
  for (const char* c = cap; *c != '\0'; ++c)
    if (*c != ' ' && *c != '\t') list += *c;
  list += ",";
  CpuFeatures out;  // all false
  for (int i = 0; i < kCpuFeatureFieldCount; ++i) {
    const CpuFeatureField& f = kCpuFeatureFields[i];
    if (list.find(std::string(",") + f.name + ",") != std::string::npos) out.*f.flag = detected.*f.flag;
  }
  return out;
}

CpuFeatures usable_cpu_features(const CpuFeatures& detected) {
  const char* cap = std::getenv(kCpuFeatureCapVar);
  if (cap == nullptr || cap[0] == '\0') return detected;
  return cap_cpu_features(detected, cap);
}

}  // namespace troupe
