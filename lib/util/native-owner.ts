/** The dispose contract of the classes that own a native object (Learner, Predictor). */

/** Owns one native object: `dispose()` frees it once, and every later use throws naming the owner. */
export abstract class NativeOwner<T extends { dispose(): void }> {
  private disposed = false;

  protected constructor(
    /** The class name in messages: "<owner>: used after dispose()". */
    private readonly owner: string,
    private readonly nativeObject: T,
  ) {}

  /** Frees the native object now; any later call throws. Safe to call twice. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.nativeObject.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  /** The native object; throws once disposed. */
  protected live(): T {
    if (this.disposed) throw new Error(`${this.owner}: used after dispose()`);
    return this.nativeObject;
  }
}
