// TLS for node links, authenticated by the pre-shared key derived from the
// join token: TLS 1.2 with ECDHE-PSK and an AEAD cipher, so the link is
// encrypted with forward secrecy and each side's Finished message proves it
// holds the key. Nothing is decoded from a socket before 'secureConnect' /
// 'secureConnection'; a peer with another key fails inside the handshake.
import { connect, createServer, type ConnectionOptions, type TlsOptions, type TLSSocket, type Server } from 'node:tls';
import { linkKey } from './join-token.js';

export const LINK_CIPHERS = 'ECDHE-PSK-CHACHA20-POLY1305';
const IDENTITY_HINT = 'troupe-leader';

function common(): Pick<TlsOptions, 'ciphers' | 'minVersion' | 'maxVersion'> {
  // TLS 1.3 PSK is not offered by Node's pskCallback; 1.2 with ECDHE-PSK is.
  return { ciphers: LINK_CIPHERS, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' };
}

export function createLinkServer(token: string, onSecure: (socket: TLSSocket) => void): Server {
  const key = linkKey(token);
  return createServer({
    ...common(),
    pskIdentityHint: IDENTITY_HINT,
    // every node holds the same key; the identity is only a label (names are checked in the hello)
    pskCallback: () => key,
    handshakeTimeout: 5000,
  }, onSecure);
}

export function connectLink(host: string, port: number, token: string, identity: string): TLSSocket {
  const key = linkKey(token);
  const options: ConnectionOptions = {
    ...common(), host, port,
    pskCallback: () => ({ psk: key, identity: identity.slice(0, 128) }),
    // the server proves itself with the PSK, not a certificate
    checkServerIdentity: () => undefined,
  };
  return connect(options);
}
