/** A test client for the live stream: reads text/event-stream over fetch, as the dashboard does. */

export type SseFrame = { event: string; data: any; comment: string | null };

export type SseClient = {
  status: number;
  headers: Headers;
  frames: SseFrame[];
  /** Resolves with the first frame (already received or to come) that matches. */
  waitFor(match: (f: SseFrame) => boolean, timeoutMs?: number, what?: string): Promise<SseFrame>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  abort(): void;
};

export async function openSse(url: string, headers: Record<string, string>): Promise<SseClient> {
  const ctrl = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: ctrl.signal });
  const frames: SseFrame[] = [];
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  let finished = false;

  const ended = (async () => {
    if (!res.body) return;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const raw = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let event = 'message';
          const data: string[] = [];
          let comment: string | null = null;
          for (const line of raw.split('\n')) {
            if (line.startsWith(':')) comment = line.slice(1).trim();
            else if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).trim());
          }
          frames.push({ event, data: data.length ? JSON.parse(data.join('\n')) : null, comment });
          notify();
        }
      }
    } catch {
      /* aborted */
    } finally {
      finished = true;
      notify();
    }
  })();

  return {
    status: res.status,
    headers: res.headers,
    frames,
    ended,
    abort: () => ctrl.abort(),
    waitFor(match, timeoutMs = 60_000, what = 'a matching frame') {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = frames.find(match);
          if (found) {
            done();
            resolve(found);
          } else if (finished) {
            done();
            reject(new Error(`stream ended before ${what}; frames: ${JSON.stringify(frames)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(frames)}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
}
