/**
 * One shared provider status lookup (M-Pesa STK query, Pesapal GetTransactionStatus, Flutterwave
 * verify) for one payment:
 *
 * - single flight: concurrent callers in this process with the same key wait for the lookup that
 *   is running and share its answer (`shared: true`), or its error;
 * - a database claim (the caller's `claim`, e.g. PaymentsRepository.claimStatusQuery) lets one
 *   caller across all instances ask per interval; the others get `{asked: false}`;
 * - a lookup that answered (ask resolved) is recorded with `answered(claimedAt)`, so stored
 *   notifications received before its claim count as answered by it (PaymentsRepository
 *   finishIfAnswered). A lookup that failed answers nothing, though it used its interval.
 *
 * `claim` returns the claim's time as the database wrote it (text, exact to the microsecond), or
 * null when another caller asked within the interval.
 */
export type LookupTurn<T> = { asked: false } | { asked: true; shared: boolean; value: T };

export class SharedLookups<T> {
  private readonly running = new Map<string, Promise<LookupTurn<T>>>();

  constructor(private readonly answered: (paymentId: string, claimedAt: string) => Promise<void>) {}

  turn(
    paymentId: string,
    key: string,
    claim: () => Promise<string | null>,
    ask: () => Promise<T>,
  ): Promise<LookupTurn<T>> {
    const running = this.running.get(key);
    if (running) return running.then((t): LookupTurn<T> => (t.asked ? { ...t, shared: true } : t));
    const turn = (async (): Promise<LookupTurn<T>> => {
      const claimedAt = await claim();
      if (claimedAt === null) return { asked: false };
      const value = await ask();
      // Not recording it only makes later notifications wait for another lookup: never fail the answer for it.
      await this.answered(paymentId, claimedAt).catch(() => undefined);
      return { asked: true, shared: false, value };
    })().finally(() => this.running.delete(key));
    this.running.set(key, turn);
    return turn;
  }

  /** Lookups running in this process (for tests). */
  get inFlight(): number {
    return this.running.size;
  }
}
