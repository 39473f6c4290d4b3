/** A minimal FIFO async mutex: `run` executes callbacks one at a time, in call order. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;

  /** Callbacks queued or running. */
  get pending(): number {
    return this.waiting;
  }

  run<T>(callback: () => Promise<T> | T): Promise<T> {
    this.waiting++;
    const result = this.tail.then(callback);
    const done = (): void => {
      this.waiting--;
    };
    // The chain continues whether the callback resolved or rejected
    this.tail = result.then(done, done);
    return result;
  }
}
