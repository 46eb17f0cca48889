// Kernel instruction-set paths and which CPU features each one needs.
// Preference order (best first): avx512bf16 > avx512 > avx2 on x86-64,
// neon-bf16 > neon on ARM64, then scalar everywhere. A build has the kernels of
// its own architecture only (isa_supported is false for the other's).
// `amx` is opt-in (TROUPE_ISA=amx or an explicit isa argument), listed last and never
// chosen by best_isa: its tile product adds in another order than vdpbf16ps, so a row's
// bits differ from the avx512bf16 path's (they are invariant within the amx path:
// native/README.md).
#pragma once

#include <string>

#include "platform/cpu_features.h"

namespace troupe {

// Values index isa.cc's table; new paths are appended, so the x86 values never move.
enum class Isa { Avx512Bf16 = 0, Avx512 = 1, Avx2 = 2, Scalar = 3, Amx = 4, NeonBf16 = 5, Neon = 6 };
constexpr int kIsaCount = 7;
// Every Isa, best first (scalar last): the order of best_isa and availableIsas.
extern const Isa kIsaPreference[kIsaCount];

const char* isa_name(Isa isa);
// Parses "avx512bf16" | "avx512" | "avx2" | "neon-bf16" | "neon" | "scalar" | "amx"; false when unknown.
bool parse_isa(const std::string& name, Isa* out);
// All names, "a, b, c" (for messages).
std::string isa_names_list();

// True when this build has the kernels AND the CPU has every feature they need.
bool isa_supported(Isa isa, const CpuFeatures& cpu);
// The best supported path (scalar always is).
Isa best_isa(const CpuFeatures& cpu);
// Names of the CPU features `isa` needs that `cpu` lacks ("avx512bf16, ...").
std::string missing_features(Isa isa, const CpuFeatures& cpu);
// Names of the features `cpu` has ("avx2, fma, ..."), or "none".
std::string present_features(const CpuFeatures& cpu);

}  // namespace troupe
