// Every metric vLLM's example Grafana dashboard queries exists on /metrics
// under vLLM's name and type, with vLLM's model_name label, and the ones a
// request feeds have observed it.
import test from 'ava';
import { buckets125 } from '../../gateway/request-metrics.js';
import { startGateway, TEST_MODEL_NAME, type TestGateway } from './helpers.js';

const DASHBOARD: [name: string, type: 'counter' | 'gauge' | 'histogram'][] = [
  ['vllm:e2e_request_latency_seconds', 'histogram'],
  ['vllm:time_to_first_token_seconds', 'histogram'],
  ['vllm:time_per_output_token_seconds', 'histogram'],
  ['vllm:inter_token_latency_seconds', 'histogram'],
  ['vllm:request_time_per_output_token_seconds', 'histogram'],
  ['vllm:request_prompt_tokens', 'histogram'],
  ['vllm:request_generation_tokens', 'histogram'],
  ['vllm:request_params_n', 'histogram'],
  ['vllm:request_params_max_tokens', 'histogram'],
  ['vllm:request_max_num_generation_tokens', 'histogram'],
  ['vllm:request_queue_time_seconds', 'histogram'],
  ['vllm:request_prefill_time_seconds', 'histogram'],
  ['vllm:request_decode_time_seconds', 'histogram'],
  ['vllm:request_inference_time_seconds', 'histogram'],
  ['vllm:iteration_tokens_total', 'histogram'],
  ['vllm:num_requests_running', 'gauge'],
  ['vllm:num_requests_waiting', 'gauge'],
  ['vllm:num_requests_swapped', 'gauge'],
  ['vllm:gpu_cache_usage_perc', 'gauge'],
  ['vllm:kv_cache_usage_perc', 'gauge'],
  ['vllm:gpu_prefix_cache_hit_rate', 'gauge'],
  ['vllm:cache_config_info', 'gauge'],
  ['vllm:prompt_tokens_total', 'counter'],
  ['vllm:generation_tokens_total', 'counter'],
  ['vllm:request_success_total', 'counter'],
  ['vllm:num_preemptions_total', 'counter'],
  ['vllm:prefix_cache_queries_total', 'counter'],
  ['vllm:prefix_cache_hits_total', 'counter'],
  ['vllm:gpu_prefix_cache_queries_total', 'counter'],
  ['vllm:gpu_prefix_cache_hits_total', 'counter'],
];

/** Histograms a finished request must have observed (their _count). */
const OBSERVED = ['vllm:e2e_request_latency_seconds', 'vllm:time_to_first_token_seconds', 'vllm:time_per_output_token_seconds',
  'vllm:request_time_per_output_token_seconds', 'vllm:request_prompt_tokens', 'vllm:request_generation_tokens', 'vllm:request_params_n',
  'vllm:request_params_max_tokens', 'vllm:request_max_num_generation_tokens', 'vllm:request_queue_time_seconds',
  'vllm:request_prefill_time_seconds', 'vllm:request_decode_time_seconds', 'vllm:request_inference_time_seconds', 'vllm:iteration_tokens_total'];

let gateway: TestGateway;
test.before(async () => {
  gateway = await startGateway();
});
test.after.always(async () => gateway?.close());

function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : NaN;
}

test('after requests, /metrics has every dashboard metric with vLLM\'s type, and the request fed them', async (t) => {
  const prompt = Array.from({ length: 30 }, (_, i) => `w${i}`).join(' ');
  const completion = await fetch(`${gateway.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ model: TEST_MODEL_NAME, prompt, max_tokens: 6, n: 2, ignore_eos: true, temperature: 1, seed: 1 }) });
  t.is(completion.status, 200);
  await completion.json();
  const again = await fetch(`${gateway.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ model: TEST_MODEL_NAME, prompt, max_tokens: 3, ignore_eos: true }) });
  await again.json();
  const text = await (await fetch(`${gateway.url}/metrics`)).text();
  const labels = `{model_name="${TEST_MODEL_NAME}",engine="0"}`;
  for (const [name, type] of DASHBOARD) {
    t.true(text.includes(`\n# TYPE ${name} ${type}\n`), `${name} is a ${type}`);
    if (type === 'histogram') t.true(text.includes(`${name}_count${labels}`), `${name} has a model_name series`);
  }
  for (const name of OBSERVED) t.true(sample(text, `${name}_count${labels}`) > 0, `${name} observed`);
  t.is(sample(text, `vllm:request_params_n_count${labels}`), 2, 'one observation per API request');
  t.is(sample(text, `vllm:request_params_n_sum${labels}`), 3, 'n = 2, then 1');
  t.is(sample(text, `vllm:request_max_num_generation_tokens_sum${labels}`), 9, 'the longest choice: 6, then 3');
  t.is(sample(text, `vllm:request_generation_tokens_count${labels}`), 3, 'one per engine request (choice)');
  t.is(sample(text, `vllm:request_generation_tokens_sum${labels}`), 15);
  t.is(sample(text, `vllm:request_success_total{model_name="${TEST_MODEL_NAME}",engine="0",finished_reason="length"}`), 3);
  t.is(sample(text, `vllm:num_requests_swapped${labels}`), 0);
  t.is(sample(text, `vllm:gpu_cache_usage_perc${labels}`), sample(text, `vllm:kv_cache_usage_perc${labels}`));
  t.is(sample(text, `vllm:gpu_prefix_cache_hits_total${labels}`), sample(text, `vllm:prefix_cache_hits_total${labels}`));
  t.true(sample(text, `vllm:prefix_cache_hits_total${labels}`) > 0, 'the repeated prompt hit the prefix cache');
  const hits = sample(text, `vllm:prefix_cache_hits_total${labels}`);
  const queries = sample(text, `vllm:prefix_cache_queries_total${labels}`);
  t.is(sample(text, `vllm:gpu_prefix_cache_hit_rate${labels}`), hits / queries);
  t.regex(text, /vllm:cache_config_info\{model_name="tiny-test",engine="0",block_size="32",num_gpu_blocks="\d+",cache_dtype="auto",enable_prefix_caching="True"\} 1/);
  t.true(sample(text, `vllm:iteration_tokens_total_sum${labels}`) >= 30 * 2 + 15, 'every prompt and generated token went through a step');
});

test('token-count buckets are vLLM\'s 1-2-5 series up to max_model_len', (t) => {
  t.deepEqual(buckets125(2048), [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000]);
  t.deepEqual(buckets125(1), [1]);
});
