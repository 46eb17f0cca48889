// Errors of model loading: each names the file and, where there is one, the tensor.

export class ModelLoadError extends Error {
  override readonly name = 'ModelLoadError';
  /** The file the problem is in (absolute path). */
  readonly file: string;
  /** The tensor concerned, when there is one. */
  readonly tensor: string | undefined;
  constructor(file: string, message: string, options: { tensor?: string; cause?: unknown } = {}) {
    const where = options.tensor === undefined ? file : `${file}, tensor ${options.tensor}`;
    super(`${where}: ${message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.file = file;
    this.tensor = options.tensor;
  }
}

/** An option the engine refuses (e.g. --cpu-offload-gb without a GPU backend). */
export class ModelOptionError extends Error {
  override readonly name = 'ModelOptionError';
  readonly option: string;
  constructor(option: string, message: string) {
    super(`${option}: ${message}`);
    this.option = option;
  }
}
