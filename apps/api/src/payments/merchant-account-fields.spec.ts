import { ValidationFailedError } from '../common/errors';
import { accountEnvironment, refuseUnknownFields } from './merchant-account-fields';

describe('accountEnvironment', () => {
  it('a production deployment takes production accounts only (a sandbox success moves no money)', () => {
    expect(accountEnvironment('production', 'production')).toBe('production');
    expect(() => accountEnvironment('sandbox', 'production')).toThrow(/must be production/);
    expect(() => accountEnvironment('simulator', 'production')).toThrow(ValidationFailedError);
  });
  it('a sandbox deployment sandbox ones; the simulator simulator and sandbox ones', () => {
    expect(accountEnvironment('sandbox', 'sandbox')).toBe('sandbox');
    expect(() => accountEnvironment('production', 'sandbox')).toThrow(/must be sandbox/);
    expect(accountEnvironment('simulator', 'simulator')).toBe('simulator');
    expect(accountEnvironment('sandbox', 'simulator')).toBe('sandbox');
    expect(() => accountEnvironment('production', 'simulator')).toThrow(/one of simulator, sandbox/);
    expect(() => accountEnvironment(undefined, 'simulator')).toThrow(ValidationFailedError);
  });
});

describe('refuseUnknownFields', () => {
  const fields = { own: ['environment', 'passkey'], linked: ['environment'] };
  it('names the field, and tells a branch which fields are its head office’s', () => {
    expect(() => refuseUnknownFields({ environment: 'x', color: 1 }, fields, false, 'M-Pesa')).toThrow(
      /Unknown field "color" for a shop's M-Pesa account/,
    );
    expect(() => refuseUnknownFields({ passkey: 'x' }, fields, true, 'M-Pesa')).toThrow(
      /passkey comes from the shop whose credentials/,
    );
    expect(() => refuseUnknownFields({ environment: 'x', passkey: 'y' }, fields, false, 'M-Pesa')).not.toThrow();
  });
});
