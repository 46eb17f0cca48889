// The two requests the evaluator makes of any OpenAI-compatible server,
// through POST {baseUrl}/completions (the legacy completions API, which
// lm-eval-harness's local-completions model also uses):
//
//   logLikelihood  echo + logprobs + max_tokens 1, temperature 0: the
//                  prompt's own token log-probabilities come back, each with
//                  its character offset; the one generated token is ignored
//   generate       greedy text, temperature 0
//
// Scoring needs only token_logprobs and text_offset, never the server's
// tokenizer: a token belongs to the continuation when it starts at or after
// the context's end (in code points, as text_offset counts). Offsets count
// the texts of every echoed token, a BOS the server added included, so they
// are anchored at the generated token, which starts where the prompt ends.

export interface CompletionsEndpoint {
  /** e.g. http://127.0.0.1:8000/v1 */
  baseUrl: string;
  model: string;
  apiKey?: string;
}

interface LegacyLogprobs {
  token_logprobs: (number | null)[];
  text_offset: number[];
}
interface CompletionResponse {
  choices: { text: string; logprobs: LegacyLogprobs | null }[];
}

class EvalRequestError extends Error {
  override name = 'EvalRequestError';
}

async function post(endpoint: CompletionsEndpoint, body: Record<string, unknown>): Promise<CompletionResponse> {
  const url = `${endpoint.baseUrl.replace(/\/+$/, '')}/completions`;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (endpoint.apiKey) headers['authorization'] = `Bearer ${endpoint.apiKey}`;
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ model: endpoint.model, ...body }) });
  } catch (error) {
    throw new EvalRequestError(`cannot reach ${url}: ${(error as Error).message}`, { cause: error });
  }
  const text = await response.text();
  if (!response.ok) throw new EvalRequestError(`${url} answered ${response.status}: ${text.slice(0, 500)}`);
  return JSON.parse(text) as CompletionResponse;
}

/** Code points of s (text_offset's unit). */
const codePoints = (s: string): number => [...s].length;

/**
 * Sum of log P(token) over the prompt tokens that start at or after `from`
 * (a code-point offset), and how many there were; the first prompt token
 * has no log-probability and is never counted.
 */
function sumFrom(logprobs: LegacyLogprobs, from: number, to: number): { logprob: number; tokens: number } {
  let logprob = 0;
  let tokens = 0;
  for (let i = 0; i < logprobs.text_offset.length; i++) {
    const offset = logprobs.text_offset[i]!;
    const lp = logprobs.token_logprobs[i];
    if (offset < from || offset >= to || lp === null || lp === undefined) continue;
    logprob += lp;
    tokens++;
  }
  return { logprob, tokens };
}

/** log P(continuation | context) and its token count, as the server scores context + continuation. */
export async function logLikelihood(endpoint: CompletionsEndpoint, context: string, continuation: string): Promise<{ logprob: number; tokens: number }> {
  const prompt = context + continuation;
  const response = await post(endpoint, { prompt, max_tokens: 1, temperature: 0, echo: true, logprobs: 0 });
  const logprobs = response.choices[0]?.logprobs;
  if (!logprobs || logprobs.text_offset.length < 2) throw new EvalRequestError('the server returned no prompt logprobs for an echo request');
  const promptEnd = logprobs.text_offset[logprobs.text_offset.length - 1]!;
  const shift = promptEnd - codePoints(prompt);
  return sumFrom(logprobs, codePoints(context) + shift, promptEnd);
}

/** The greedy completion of `prompt`, at most maxTokens tokens. */
export async function generate(endpoint: CompletionsEndpoint, prompt: string, maxTokens: number): Promise<string> {
  const response = await post(endpoint, { prompt, max_tokens: maxTokens, temperature: 0 });
  return response.choices[0]?.text ?? '';
}
