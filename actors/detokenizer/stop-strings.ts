// Finding stop strings in generated text as it grows.
//
// Only matches that end inside the newest text are looked for: anything that
// ended earlier was found (or deliberately ignored, under min_tokens) by an
// earlier call. Among those, the match that completes first wins (smallest
// end; on a tie the longer one, which starts earlier). Checking after every
// token this way gives the same cut however the tokens were batched.

export interface StopMatch {
  stop: string;
  /** Offsets of the match in the text (UTF-16 code units). */
  start: number;
  end: number;
}

/** The first stop string to complete in `text`, among matches that end after `newStart`. */
export function findStop(text: string, newStart: number, stops: readonly string[]): StopMatch | null {
  let best: StopMatch | null = null;
  for (const stop of stops) {
    // The earliest match of `stop` that ends past newStart starts past newStart - stop.length.
    const start = text.indexOf(stop, Math.max(0, newStart - stop.length + 1));
    if (start < 0) continue;
    const end = start + stop.length;
    if (!best || end < best.end || (end === best.end && start < best.start)) best = { stop, start, end };
  }
  return best;
}

/**
 * How much of the text's tail to hold back while generation goes on: the
 * longest stop string minus one, so a stop string that is still arriving is
 * never sent and then taken back.
 */
export function holdbackLength(stops: readonly string[]): number {
  return stops.reduce((most, stop) => Math.max(most, stop.length - 1), 0);
}

/** Stop strings must be non-empty, well-formed text. */
export function checkStopStrings(stops: readonly unknown[]): string[] {
  return stops.map((stop, i) => {
    if (typeof stop !== 'string' || stop.length === 0) throw new RangeError(`stop[${i}] must be a non-empty string, got ${JSON.stringify(stop)}`);
    if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(stop)) throw new RangeError(`stop[${i}] has an unpaired UTF-16 surrogate`);
    return stop;
  });
}
