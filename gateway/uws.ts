// uWebSockets.js is a CommonJS addon without named ESM exports: import it
// once here, as a default import, and hand out what the gateway uses.
import uWS from 'uWebSockets.js';

export const { App, DISABLED, us_listen_socket_close, us_socket_local_port } = uWS;
export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, WebSocket } from 'uWebSockets.js';
