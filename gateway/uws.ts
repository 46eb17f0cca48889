// uWebSockets.js is a CommonJS addon without named ESM exports: load it once
// here and hand out what the gateway uses. When its binary cannot load on
// this system, the error says why (uws-diagnosis.ts) instead of a stack trace.
import { createRequire } from 'node:module';
import type * as UwsModule from 'uWebSockets.js';
import { explainUwsFailure, packageDirOf, probeSystem, UwsLoadError, type UwsProbe } from './uws-diagnosis.js';

type Uws = typeof UwsModule;

const require = createRequire(import.meta.url);

/** Loads uWS with `load`; a failure becomes a UwsLoadError that explains it (`probe` describes the system). */
export function loadUws(load: () => Uws, probe: () => UwsProbe): Uws {
  try {
    return load();
  } catch (error) {
    throw new UwsLoadError(explainUwsFailure(probe(), String((error as Error)?.message ?? error)));
  }
}

const uWS = loadUws(() => require('uWebSockets.js') as Uws, () => probeSystem(packageDirOf(require.resolve('uWebSockets.js'))));

export const { App, DISABLED, us_listen_socket_close, us_socket_local_port } = uWS;
export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, WebSocket } from 'uWebSockets.js';
