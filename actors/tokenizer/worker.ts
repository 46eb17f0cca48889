// A tokenizer pool thread (piscina worker): loads the model's Tokenizer once,
// as soon as the thread starts, then serves encode / chat / decode tasks.
import { workerData } from 'piscina';
import { errorInfo } from './errors.js';
import type { TaskResult, TokenizerTask, TokenizerWorkerData } from './tasks.js';
import { Tokenizer } from './tokenizer.js';

const data = workerData as TokenizerWorkerData;

// Started at import so every thread loads in parallel with the others; a load
// error is kept and returned by every task (the pool's first task reports it).
const loading: Promise<Tokenizer> = new Promise((resolve) => resolve(
  Tokenizer.load(data.modelDir, data.chatTemplate !== undefined ? { chatTemplate: data.chatTemplate } : {}),
));
loading.catch(() => {});

export default async function run(task: TokenizerTask): Promise<TaskResult<unknown>> {
  try {
    const tokenizer = await loading;
    return { ok: true, value: perform(tokenizer, task) };
  } catch (error) {
    return { ok: false, error: errorInfo(error) };
  }
}

function perform(tokenizer: Tokenizer, task: TokenizerTask): unknown {
  switch (task.op) {
    case 'encode':
      return { tokenIds: tokenizer.encode(task.text, { addSpecialTokens: task.addSpecialTokens }) };
    case 'chat': {
      const options = { addGenerationPrompt: task.addGenerationPrompt, ...(task.templateKwargs ? { templateKwargs: task.templateKwargs } : {}), ...(task.tools ? { tools: task.tools } : {}) };
      const prompt = tokenizer.applyChatTemplate(task.messages, options);
      return { prompt, tokenIds: tokenizer.encode(prompt, { addSpecialTokens: task.addSpecialTokens }) };
    }
    case 'decode':
      return { text: tokenizer.decode(task.tokenIds, { skipSpecialTokens: task.skipSpecialTokens }) };
    case 'info':
      return {
        vocabSize: tokenizer.vocabSize,
        bosTokenId: tokenizer.bosTokenId,
        eosTokenId: tokenizer.eosTokenId,
        specialTokenIds: [...tokenizer.specialTokenIds],
        hasChatTemplate: tokenizer.hasChatTemplate,
      };
  }
}
