// The detokenizer actor: one incremental detokenizer per request id, so the
// engine can route generated tokens through it and get text deltas back.
// Detokenizing a token is a table lookup plus UTF-8 decoding, so it runs
// inline; only the vocabulary (not the full tokenizer) is loaded.
import { Actor } from '../../runtime/index.js';
import { errorInfo } from '../tokenizer/errors.js';
import { Vocabulary } from '../tokenizer/vocabulary.js';
import { IncrementalDetokenizer } from './incremental.js';
import type { DeltaReply, DetokenizerMessage, TokensForRequest } from './messages.js';

/** A model directory (works in any placement), or a vocabulary already loaded (local placement). */
export type DetokenizerActorOptions = { modelDir: string } | { vocabulary: Vocabulary };

export class DetokenizerActor extends Actor<DetokenizerMessage> {
  private vocab!: Vocabulary;
  private readonly states = new Map<string, IncrementalDetokenizer>();

  constructor(private readonly options: DetokenizerActorOptions) {
    super();
  }

  override preStart(): void {
    this.vocab = 'vocabulary' in this.options ? this.options.vocabulary : Vocabulary.load(this.options.modelDir);
  }

  receive(message: DetokenizerMessage): void {
    switch (message.type) {
      case 'create':
        try {
          if (this.states.has(message.requestId)) throw new Error(`request ${message.requestId} already has detokenizer state; free it first`);
          const state = new IncrementalDetokenizer(this.vocab, message.params);
          if (message.replayTokens?.length) state.push(message.replayTokens);
          this.states.set(message.requestId, state);
          message.replyTo?.tell({ ok: true });
        } catch (error) {
          message.replyTo?.tell({ ok: false, error: errorInfo(error) });
        }
        return;
      case 'add':
        message.replyTo.tell(this.add(message));
        return;
      case 'add-batch':
        message.replyTo.tell(message.items.map((item) => this.add(item)));
        return;
      case 'free':
        this.states.delete(message.requestId);
        return;
      case 'count':
        message.replyTo.tell(this.states.size);
        return;
    }
  }

  private add(item: TokensForRequest): DeltaReply {
    const state = this.states.get(item.requestId);
    if (!state) {
      return { ok: false, requestId: item.requestId, error: { name: 'Error', message: `no detokenizer state for request ${item.requestId}; create it first` } };
    }
    const update = state.push(item.tokenIds, item.final ?? false);
    if (item.final) this.states.delete(item.requestId);
    return { ok: true, requestId: item.requestId, delta: update.delta, stop: update.stop };
  }
}
