/**
 * How a request whose body is over the limit is answered so that the client can read the 413.
 *
 * Node closes the socket as soon as a response ends. A client still sending its body (most send it
 * whole before reading) then writes into a closed socket: Node's fetch saw EPIPE, curl only its
 * `100 Continue`, never the 413. So:
 *   - with `Expect: 100-continue`, a Content-Length over the limit is answered 413 at once, instead
 *     of the 100 Continue Node would send by itself, and the client never sends the body;
 *   - otherwise the 413 is written whole (Content-Length, `Connection: close`), the rest of the
 *     body is read and discarded, up to DRAIN_LIMIT_BYTES and DRAIN_TIMEOUT_MS, and only then is the
 *     response ended and the connection closed.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

/** More than this is not read: past it the connection is closed as Node would (the client may see a reset). */
const DRAIN_LIMIT_BYTES = 32 * 1024 * 1024;
/** A client that stops sending is not waited for longer than this (the request deadline may cut it first). */
const DRAIN_TIMEOUT_MS = 10_000;

function headersFor(text: string): Record<string, string | number> {
  return { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), connection: 'close' };
}

/** Writes the whole response, reads what remains of the request's body (bounded), then ends and closes. */
export function answerThenDrain(req: IncomingMessage, res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, headersFor(text));
  res.write(text);
  let read = 0;
  const finish = () => {
    clearTimeout(timer);
    req.off('data', onData);
    req.off('end', finish);
    req.off('close', finish);
    if (!res.writableEnded) res.end();
  };
  const onData = (chunk: Buffer) => {
    read += chunk.length;
    if (read > DRAIN_LIMIT_BYTES) finish();
  };
  const timer = setTimeout(finish, DRAIN_TIMEOUT_MS);
  timer.unref();
  req.on('data', onData);
  req.once('end', finish);
  req.once('close', finish);
  if (req.complete) finish();
  else req.resume();
}

/**
 * Answers `Expect: 100-continue` requests: a Content-Length over `limitBytes` gets `refusal()`
 * (status and JSON text) with `Connection: close` and no 100 Continue; any other gets its
 * 100 Continue and is served as usual.
 */
export function answerExpectContinue(server: Server, limitBytes: number, refusal: () => { status: number; text: string }): void {
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (Number(req.headers['content-length']) > limitBytes) {
      const { status, text } = refusal();
      res.writeHead(status, headersFor(text));
      res.end(text);
      return;
    }
    res.writeContinue();
    server.emit('request', req, res);
  });
}
