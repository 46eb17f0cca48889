// Permission to use AMX tile data. Linux keeps the tile state (XTILEDATA, 8 KiB)
// out of a process until it asks (arch_prctl ARCH_REQ_XCOMP_PERM); a tile
// instruction before that faults. The permission is per process and covers
// every thread, present and future (the native pool's and worker_threads');
// the tile configuration is per thread, loaded by each kernel call.
#pragma once

namespace troupe {

// Asks once per process (later calls return the first answer); true when tiles may be used.
bool amx_request_permission();

}  // namespace troupe
