// Node link heartbeats: a silent peer is declared dead after the timeout,
// unless it is starting actors (a spawn pending there: loading a shard blocks
// it), or this thread itself was blocked and could not have heard it.
import test from 'ava';
import { EventEmitter } from 'node:events';
import { Heartbeat } from '../../runtime/node/heartbeat.js';
import type { StreamPort } from '../../runtime/stream-port.js';

function fakePort() {
  const port = new EventEmitter() as EventEmitter & { pings: number; postMessage: (m: unknown) => void };
  port.pings = 0;
  port.postMessage = () => void port.pings++;
  return port;
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test.serial('a silent peer is declared dead; one that is starting actors is given the longer bound', async (t) => {
  const idle = fakePort();
  let dead = 0;
  const beat = new Heartbeat(idle as unknown as StreamPort, 50, 600, () => dead++);
  await sleep(1500);
  t.is(dead, 1);
  t.true(idle.pings > 0);
  beat.stop();

  const starting = fakePort();
  let busy = true;
  let startingDead = 0;
  const patient = new Heartbeat(starting as unknown as StreamPort, 50, 600, () => startingDead++, { busy: () => busy, busyTimeoutMs: 10_000 });
  await sleep(1500);
  t.is(startingDead, 0, 'a spawn is pending there');
  busy = false;
  await sleep(500);
  t.is(startingDead, 1, 'once started, the usual timeout holds');
  patient.stop();
});

test.serial('after this thread was blocked past the timeout, the silence restarts instead of dropping the peer', async (t) => {
  const port = fakePort();
  let dead = 0;
  const beat = new Heartbeat(port as unknown as StreamPort, 50, 600, () => dead++);
  await sleep(100);
  const until = Date.now() + 1500;
  while (Date.now() < until); // a synchronous load
  await sleep(100);
  t.is(dead, 0);
  port.emit('message', { t: 'ping' }); // what was queued meanwhile
  await sleep(200);
  t.is(dead, 0);
  beat.stop();
});
