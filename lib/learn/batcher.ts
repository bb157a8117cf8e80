/**
 * Shares one native model between many callers of one event loop: each
 * caller submits one item, and the items queued together run as one batch.
 */

/** When a batch runs. */
export interface BatchingOptions {
  /** Most items in one batch: a full queue runs at once. */
  maxBatch: number;
  /**
   * Longest the oldest queued item waits for company before its batch runs,
   * in ms. A batch never starts while the previous one runs, so a busy model
   * can add to this wait (and the queue fills for the next batch meanwhile).
   */
  maxWaitMs: number;
}

/** What a Batcher has done so far. */
export interface BatcherCounts {
  /** Items that ran in a batch (whether the batch succeeded or not). */
  items: number;
  batches: number;
  /** The most items one batch held. */
  largestBatch: number;
  /** Items waiting for the next batch now. */
  queued: number;
  /** Time spent inside `run`, summed over batches (ms). */
  busyMs: number;
  /** `performance.now()` when the last batch settled; undefined before the first. */
  lastSettledAt: number | undefined;
}

interface Waiting<In, Out> {
  item: In;
  queuedAt: number;
  resolve(out: Out): void;
  reject(err: unknown): void;
}

/**
 * A queue in front of a batch function. A batch starts when `maxBatch` items
 * are queued, or `maxWaitMs` after the oldest queued item arrived, and never
 * while another batch runs: one batch at a time keeps the model's thread
 * busy without piling work onto it, and the queue meanwhile collects the
 * next batch. The first failure of a batch rejects every item of that batch.
 */
export class Batcher<In, Out> {
  private readonly queue: Waiting<In, Out>[] = [];
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private closedWith: string | undefined;
  private readonly counts: Omit<BatcherCounts, 'queued'> = { items: 0, batches: 0, largestBatch: 0, busyMs: 0, lastSettledAt: undefined };

  /** `run` gets the items of one batch and resolves with one result per item, in order. */
  constructor(
    private readonly run: (items: In[]) => Promise<Out[]>,
    private readonly options: BatchingOptions,
  ) {}

  /** Queues one item; settles with its result, or rejects when its batch fails or the batcher closes first. */
  submit(item: In): Promise<Out> {
    if (this.closedWith !== undefined) return Promise.reject(new Error(this.closedWith));
    return new Promise<Out>((resolve, reject) => {
      this.queue.push({ item, queuedAt: performance.now(), resolve, reject });
      this.startWhenDue();
    });
  }

  /** Rejects every queued item and every later submit with `message`; a running batch still settles. */
  close(message: string): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = message;
    this.clearTimer();
    for (const waiting of this.queue.splice(0)) waiting.reject(new Error(message));
  }

  stats(): BatcherCounts {
    return { ...this.counts, queued: this.queue.length };
  }

  /** Starts the next batch if it is due, else arms the timer for when it will be. */
  private startWhenDue(): void {
    if (this.running || this.queue.length === 0) return;
    const full = this.queue.length >= this.options.maxBatch;
    const wait = full ? 0 : this.queue[0].queuedAt + this.options.maxWaitMs - performance.now();
    if (wait <= 0) {
      void this.runBatch();
    } else if (this.timer === undefined) {
      // The timer always belongs to the current oldest item: it is cleared whenever a batch takes it.
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.startWhenDue();
      }, wait);
    }
  }

  private async runBatch(): Promise<void> {
    this.clearTimer();
    const batch = this.queue.splice(0, this.options.maxBatch);
    this.running = true;
    const start = performance.now();
    try {
      const outs = await this.run(batch.map((waiting) => waiting.item));
      if (outs.length !== batch.length) throw new Error(`batcher: a batch of ${batch.length} items gave ${outs.length} results`);
      batch.forEach((waiting, i) => waiting.resolve(outs[i]));
    } catch (err) {
      for (const waiting of batch) waiting.reject(err);
    } finally {
      this.record(batch.length, start);
      this.running = false;
      this.startWhenDue();
    }
  }

  private record(size: number, start: number): void {
    const end = performance.now();
    this.counts.items += size;
    this.counts.batches += 1;
    this.counts.largestBatch = Math.max(this.counts.largestBatch, size);
    this.counts.busyMs += end - start;
    this.counts.lastSettledAt = end;
  }

  private clearTimer(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
