#include "platform/amx_permission.h"

#if defined(__linux__) && defined(TROUPE_X86)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace troupe {

bool amx_request_permission() {
#if defined(__linux__) && defined(TROUPE_X86)
  constexpr long kArchGetXcompPerm = 0x1022, kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  // A process-wide fact, asked once: a function-local static (thread-safe initialization).
  static const bool granted = [] {
    if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0) return true;
    unsigned long mask = 0;  // an older kernel may have granted it already
    return syscall(SYS_arch_prctl, kArchGetXcompPerm, &mask) == 0 && ((mask >> kXfeatureXtiledata) & 1) != 0;
  }();
  return granted;
#else
  return false;
#endif
}

}  // namespace troupe
