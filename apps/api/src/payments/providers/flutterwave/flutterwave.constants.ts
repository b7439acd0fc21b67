/** The adapter of the platform's account, or null when Flutterwave is switched off on this instance. */
export const FLUTTERWAVE_PROVIDER = Symbol('FLUTTERWAVE_PROVIDER');
