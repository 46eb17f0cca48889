// The child ids of the engine's supervision tree, and every actor path,
// derived from them here and nowhere else (troupe.ts builds the tree from the
// same ids; rank-group.ts builds the rank group's):
//
//   troupe
//   ├─ tokenizer
//   ├─ front
//   ├─ extensions
//   └─ engine
//      ├─ ranks
//      │  ├─ tensor-groups
//      │  └─ rank0 .. rankN-1
//      ├─ scheduler
//      └─ detokenizer
export const TREE_IDS = {
  root: 'troupe',
  tokenizer: 'tokenizer',
  front: 'front',
  extensions: 'extensions',
  engine: 'engine',
  ranks: 'ranks',
  tensorGroups: 'tensor-groups',
  scheduler: 'scheduler',
  detokenizer: 'detokenizer',
} as const;

/** The id of rank `rank` (rank = stage * tp + tpRank) under ranks. */
export const rankId = (rank: number) => `rank${rank}`;

const path = (...ids: string[]) => ids.join('/');
const ENGINE = path(TREE_IDS.root, TREE_IDS.engine);
const RANKS = path(ENGINE, TREE_IDS.ranks);

export const PATHS = {
  root: TREE_IDS.root,
  tokenizer: path(TREE_IDS.root, TREE_IDS.tokenizer),
  front: path(TREE_IDS.root, TREE_IDS.front),
  extensions: path(TREE_IDS.root, TREE_IDS.extensions),
  ranks: RANKS,
  tensorGroups: path(RANKS, TREE_IDS.tensorGroups),
  rank0: path(RANKS, rankId(0)),
  scheduler: path(ENGINE, TREE_IDS.scheduler),
  detokenizer: path(ENGINE, TREE_IDS.detokenizer),
} as const;

export const rankPath = (rank: number) => path(RANKS, rankId(rank));
