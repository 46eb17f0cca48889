// JS bindings of the shared-memory collectives (shm_group.h). Raw exports,
// wrapped with types by native/collectives.ts:
//   shmCreate(ranks, capacityBytes, broadcastCapacityBytes): handle      (the owner)
//   shmAttach(descriptor, rank, spinMicros): handle                       (a rank)
//   shmDescriptor(handle): descriptor object     shmRank(handle): number (-1: owner)
//   shmAllReduce(handle, Float32Array, timeoutMs): undefined              (in place)
//   shmAllReduceAsync(handle, Float32Array, timeoutMs): Promise<Float32Array>
//   shmBroadcast(handle, root, buffer | undefined, timeoutMs): Uint8Array
//   shmBroadcastAsync(handle, root, buffer | undefined, timeoutMs): Promise<Uint8Array>
//   shmBumpEpoch(handle): number   shmEpoch(handle): number   shmStats(handle): object
//   shmClose(handle): undefined
//   linkCreate(ranks, rank, capacityBytes, onPart): handle             (link_group.h)
//   linkPut(handle, generation, fromRank, Float32Array): '' | why not
//   linkAbort(handle)  linkGeneration(handle)  linkStats(handle)  linkClose(handle)
//   linkAllReduceAsync(handle, Float32Array, timeoutMs, segments?): Promise<Float32Array>
// A handle is an External (type-tagged); errors carry a `code`
// ('TROUPE_COLLECTIVE_TIMEOUT', 'TROUPE_COLLECTIVE_ABORTED', ...).
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "collectives/shm_group.h"

namespace troupe {

// The group behind a rank's JS handle, shared memory or link (for native code
// that runs collectives itself: a tensor-parallel model step). Throws a
// TypeError naming `what`.
std::shared_ptr<coll::TensorCollective> collective_group_of(Napi::Env env, Napi::Value v, const std::string& what);

// Adds the functions above to `exports`. Stateless: context-aware as it is.
void register_collectives(Napi::Env env, Napi::Object exports);

}  // namespace troupe
