import { canTransition, isInFlight, isTerminal } from './payment-status';

describe('payment status transitions', () => {
  it('never leaves a terminal status', () => {
    for (const from of ['completed', 'failed', 'cancelled', 'expired']) {
      expect(isTerminal(from)).toBe(true);
      for (const to of [
        'initiated',
        'pending',
        'unresolved',
        'completed',
        'failed',
        'cancelled',
        'expired',
        'review',
      ] as const) {
        expect(canTransition(from, to)).toBe(false);
      }
    }
  });

  it('lets in-flight payments reach every outcome', () => {
    for (const from of ['initiated', 'pending', 'unresolved']) {
      expect(isInFlight(from)).toBe(true);
      for (const to of ['completed', 'failed', 'cancelled', 'expired', 'review'] as const)
        expect(canTransition(from, to)).toBe(true);
    }
    expect(canTransition('pending', 'initiated')).toBe(false);
    expect(isInFlight('review')).toBe(false);
    expect(isTerminal('review')).toBe(false);
  });

  it('review is left by no transition (only the truth settles an OUTCOME_UNKNOWN one, in PaymentLifecycle); an unknown status goes nowhere', () => {
    for (const to of [
      'initiated',
      'pending',
      'unresolved',
      'completed',
      'failed',
      'cancelled',
      'expired',
      'review',
    ] as const) {
      expect(canTransition('review', to)).toBe(false);
      expect(canTransition('bogus', to)).toBe(false);
    }
    expect(canTransition('unresolved', 'pending')).toBe(true);
    expect(canTransition('pending', 'unresolved')).toBe(true);
    expect(canTransition('initiated', 'unresolved')).toBe(true);
    expect(canTransition('unresolved', 'initiated')).toBe(false);
    expect(isInFlight('bogus')).toBe(false);
    expect(isTerminal('bogus')).toBe(false);
  });
});
