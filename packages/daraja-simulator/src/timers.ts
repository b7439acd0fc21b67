/** Cancellable timers, so close()/reset() can stop everything the simulator scheduled. */

export interface TimerHandle {
  readonly id: number;
}

interface Entry {
  timer: NodeJS.Timeout;
  /** Called when the timer is cancelled instead of firing. */
  onCancel?: () => void;
}

export class TimerRegistry {
  private readonly entries = new Map<number, Entry>();
  private nextId = 1;

  /** Runs `fn` after `ms` unless cancelled first. */
  schedule(ms: number, fn: () => void, onCancel?: () => void): TimerHandle {
    const id = this.nextId++;
    const timer = setTimeout(() => {
      this.entries.delete(id);
      fn();
    }, ms);
    this.entries.set(id, { timer, onCancel });
    return { id };
  }

  /** Resolves true after `ms`, or false as soon as the timer is cancelled (never rejects). */
  sleep(ms: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      this.schedule(
        ms,
        () => resolve(true),
        () => resolve(false),
      );
    });
  }

  cancel(handle: TimerHandle | undefined): void {
    if (!handle) return;
    const entry = this.entries.get(handle.id);
    if (!entry) return;
    this.entries.delete(handle.id);
    clearTimeout(entry.timer);
    entry.onCancel?.();
  }

  cancelAll(): void {
    for (const id of [...this.entries.keys()]) this.cancel({ id });
  }

  get size(): number {
    return this.entries.size;
  }
}
