/** Cancellable (and flushable) timers, so close()/reset() can stop everything a simulator scheduled. */

export interface TimerHandle {
  readonly id: number;
}

interface Entry {
  timer: NodeJS.Timeout;
  fire: () => void;
  onCancel?: () => void;
}

export class TimerRegistry {
  private readonly entries = new Map<number, Entry>();
  private nextId = 1;

  /** Runs `fn` after `ms` unless cancelled (or flushed) first. */
  schedule(ms: number, fn: () => void, onCancel?: () => void): TimerHandle {
    const id = this.nextId++;
    const fire = (): void => {
      if (!this.entries.delete(id)) return;
      fn();
    };
    const timer = setTimeout(fire, Math.min(Math.max(ms, 0), 2_147_483_647));
    this.entries.set(id, { timer, fire, onCancel });
    return { id };
  }

  /** Resolves true after `ms` (or when flushed), false as soon as the timer is cancelled. Never rejects. */
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

  /** Fires every pending timer now (in scheduling order). Returns how many fired. */
  fireAll(): number {
    const pending = [...this.entries.values()];
    for (const entry of pending) {
      clearTimeout(entry.timer);
      entry.fire();
    }
    return pending.length;
  }

  get size(): number {
    return this.entries.size;
  }
}
