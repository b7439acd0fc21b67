import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import {
  loadSecurityCertificate,
  normaliseFingerprint,
  SANDBOX_CERT_COMMON_NAME,
  SecurityCertificate,
  SIMULATOR_CERT_COMMON_NAME,
} from './mpesa-certificate';
import { REPO_ROOT } from './paths';

/** Where M-Pesa requests go: the embedded simulator, Safaricom's sandbox or production. */
export type MpesaEnvironment = 'simulator' | 'sandbox' | 'production';
/** How the shortcode takes money: a paybill (CustomerPayBillOnline) or a till (CustomerBuyGoodsOnline). */
export type MpesaTransactionType = 'paybill' | 'till';

/** The one typed configuration object, validated at boot. Nothing else reads process.env. */
export interface AppConfig {
  nodeEnv: 'development' | 'test' | 'production';
  port: number;
  /** Port of the embedded Daraja simulator (simulator mode without MPESA_BASE_URL); 0 = any free port. */
  simulatorPort: number;
  logLevel: string;
  /** json (production, tests: one JSON object per line) or pretty (development: one short line a person can read) */
  logFormat: 'json' | 'pretty';
  /** unset = embedded PGlite in `dataDir` */
  databaseUrl?: string;
  /** connections per instance to DATABASE_URL */
  databasePoolSize: number;
  databaseConnectTimeoutMs: number;
  databaseStatementTimeoutMs: number;
  dataDir: string;
  /** Express "trust proxy" setting: false, true, a hop count, or a list of addresses/subnets. */
  trustProxy: boolean | number | string;
  /**
   * On SIGTERM, GET /health/ready answers 503 (draining) this long before the server stops taking
   * requests, so a load balancer stops sending new ones first (its probe interval × failures).
   */
  shutdownDrainMs: number;
  /** GET /metrics exists only when set, for requests with `Authorization: Bearer <metricsToken>`. */
  metricsToken: string | undefined;
  /**
   * Browser origins (scheme://host[:port]) allowed to call the API (CORS). Default: none in
   * production and test, the POS dev app (http://localhost:5173, http://127.0.0.1:5173) in development.
   */
  corsOrigins: string[];
  /** Live status streams (GET /payments/events, /payments/:id/events; payments/payment-events.*). */
  liveStatus: {
    /** a `: ping` comment this often on every open stream (keeps proxies and the client's idle timer happy) */
    heartbeatMs: number;
    /** open streams per instance; one more answers 503 with Retry-After */
    maxStreams: number;
    /** open streams per shop per instance (a shop's tills; one more answers 429) */
    maxStreamsPerShop: number;
    /** status events are kept this long for resumption (Last-Event-ID), then pruned */
    retentionHours: number;
  };
  /**
   * The checkout screen (apps/pos) that `pnpm dev` serves next to the API, with a dev token in its
   * /config.js: development only (refused in production), on `port` or a free one when it is taken.
   */
  pos: { enabled: boolean; port: number };
  /**
   * Limits on POST /payments/stk-push only (callbacks and every other route are never limited).
   * A limit of 0 is off.
   */
  rateLimit: {
    /** 'auto' = Postgres (shared by every instance) when the app runs on Postgres, memory on PGlite. */
    store: 'auto' | 'memory' | 'postgres';
    /** pushes one shop may send per minute */
    shopPerMinute: number;
    /** prompts one phone number may be sent per phoneWindowSeconds */
    phonePerWindow: number;
    phoneWindowSeconds: number;
  };
  /** Per-shop merchant accounts (payments/merchant-accounts). */
  merchantAccounts: {
    /**
     * AES-256-GCM keys for the secrets at rest, the first one encrypts (the newest), every one
     * decrypts: CREDENTIALS_KEYS="<id>:<base64 32 bytes>,<older id>:<...>".
     */
    keys: Array<{ id: string; key: Buffer }>;
    /** true when no CREDENTIALS_KEYS was given and a development key was generated (never in production). */
    keysGenerated: boolean;
    /** A shop without its own account pays into the platform's account from the environment. */
    platformDefault: boolean;
  };
  jwt: {
    secret: string;
    /** true when no JWT_SECRET was given and a development secret was generated. */
    generated: boolean;
    clockToleranceSeconds: number;
    /** longest lifetime (exp − iat, and exp − now) of a token this API accepts or mints */
    maxLifetimeSeconds: number;
  };
  mpesa: {
    env: MpesaEnvironment;
    /** null in simulator mode without MPESA_BASE_URL: the embedded simulator's URL is filled in at start. */
    baseUrl: string | null;
    consumerKey: string;
    consumerSecret: string;
    shortcode: string;
    passkey: string;
    transactionType: MpesaTransactionType;
    tillNumber?: string;
    /** Base of the per-payment capability URL: `${callbackUrl}/<paymentId>/<hmac>`. */
    callbackUrl: string;
    callbackSigningSecret: string;
    /** Empty = no allowlist. Exact IPv4/IPv6 addresses or IPv4 CIDR blocks. */
    callbackIpAllowlist: string[];
    httpTimeoutMs: number;
    /** How long a connection to Daraja stays open for the next call (0 = a new one per call). */
    httpKeepAliveMs: number;
    /** stk-status asks Daraja only for payments older than this. */
    statusQueryAfterSeconds: number;
    /** A query that keeps answering "does not exist" this long after the push fails the payment. */
    notFoundFailAfterSeconds: number;
    /**
     * An unresolved push without a CheckoutRequestID cannot be queried; after this long it goes to
     * review (freeing the order), and a late callback on its capability URL can still settle it.
     */
    unresolvedReviewAfterSeconds: number;
    /**
     * Safaricom's certificate for this deployment's MPESA_ENV (the SecurityCredential of reversals
     * and Transaction Status queries is encrypted with its public key). null = not configured:
     * M-Pesa refunds are refused with a message saying so (payments are unaffected).
     */
    securityCertificate: SecurityCertificate | null;
    /** The platform account's API operator for reversals / Transaction Status (MPESA_INITIATOR_NAME / _PASSWORD), if any. */
    initiatorName?: string;
    initiatorPassword?: string;
    /**
     * MPESA_REVERSAL_WAIT_SECONDS: how long a sent reversal is given to show up before a Transaction
     * Status answer that does not show it counts as proof it never happened (and it may be sent again).
     */
    reversalWaitSeconds: number;
    /** MPESA_QR_MERCHANT_NAME: the name a Dynamic QR shows the payer when the shop's account sets none (merchantName). */
    qrMerchantName: string;
    /** MPESA_QR_SIZE: the Dynamic QR's edge in pixels (100 to 1000). */
    qrSize: number;
    /** C2B (customer-started till / paybill payments): what is registered with Daraja, how validation answers. */
    c2b: {
      /** Base of each merchant account's C2B capability URLs: `${baseUrl}/<accountId>/confirmation/<hmac>` (and /validation/). */
      baseUrl: string;
      /** registerurl path version: v1 or v2 (must match the app's Daraja product, daraja.md §7.1). */
      apiVersion: 'v1' | 'v2';
      /** The validation answer's budget (Daraja waits ~8 s): past it, the payment is accepted. */
      validationBudgetMs: number;
      /**
       * The Pull Transactions pass (C2bPullService): MPESA_C2B_PULL_ENABLED, every
       * MPESA_C2B_PULL_INTERVAL_MS, the last MPESA_C2B_PULL_LOOKBACK_SECONDS of each registered shortcode.
       */
      pull: { enabled: boolean; intervalMs: number; lookbackSeconds: number };
    };
  };
  /** How customers' browsers and the card/wallet providers reach this API (redirects, webhooks, IPNs). No trailing slash. */
  publicBaseUrl: string;
  /** After a hosted checkout the browser is sent here with ?paymentId=&status=&orderId= (unset = a small result page). */
  posReturnUrl?: string;
  flutterwave: HostedProviderConfig & {
    secretKey: string;
    /** the "Secret hash" set on the Flutterwave dashboard; sent back in the verif-hash header of webhooks */
    secretHash: string;
  };
  pesapal: HostedProviderConfig & {
    consumerKey: string;
    consumerSecret: string;
    /** how Pesapal calls our IPN URL (it registers one of the two) */
    ipnNotificationType: 'GET' | 'POST';
    /** an order still unpaid this long after init is cancelled at Pesapal and expires (Pesapal publishes no expiry of its own) */
    checkoutWindowSeconds: number;
  };
  /**
   * The background reconciler: every instance ticks, work is claimed in Postgres
   * (FOR UPDATE SKIP LOCKED + a lease), so two instances never query the same payment at once.
   */
  /**
   * The in-process applier of stored, acknowledged callbacks (CallbackApplier): how many batches
   * apply at once (CALLBACK_APPLY_CONCURRENCY, the database connections they may hold), how many
   * callbacks at most one transaction applies (CALLBACK_APPLY_BATCH) and how many wait
   * (CALLBACK_APPLY_QUEUE_MAX; beyond it a stored callback is left to the reconciler).
   */
  callbackApply: { concurrency: number; batch: number; queueMax: number };
  reconciler: {
    enabled: boolean;
    intervalMs: number;
    /** payments (and stored callbacks) claimed per tick per instance */
    batchSize: number;
    /** a claimed payment is not picked again by anyone for this long (crash safety) */
    leaseSeconds: number;
    /** a pending payment is left to its callback this long before the reconciler asks Daraja */
    pendingGraceSeconds: number;
    /** first wait after "still being processed" / spike arrest; doubles each time */
    backoffBaseSeconds: number;
    backoffMaxSeconds: number;
    /** at most this many STK queries per payment; then it goes to review */
    maxQueries: number;
    /** a payment still without an outcome this long after the push goes to review (OUTCOME_UNKNOWN) */
    giveUpAfterSeconds: number;
    /** a stored callback not processed after this long (crash, DB error) is processed again */
    inboxRetryAfterSeconds: number;
    /**
     * CALLBACK_INBOX_RETENTION_DAYS: processed unverified inbox rows that changed nothing (unknown
     * payment, not a callback, a refused webhook, a forged callback the provider refuted) are
     * deleted this long after their last delivery. Verified rows and rows that changed a payment are kept.
     */
    inboxRetentionDays: number;
    /** REFUND_FIRST_LOOK_SECONDS: a refund the provider took is left to its result this long before the reconciler asks */
    refundFirstLookSeconds: number;
    /** REFUND_MAX_LOOKS: after this many looks without a final answer a refund goes to review (a person must look) */
    refundMaxLooks: number;
  };
}

export type HostedProviderEnv = 'simulator' | 'sandbox' | 'production';

export interface HostedProviderConfig {
  enabled: boolean;
  env: HostedProviderEnv;
  /** null in simulator mode without an explicit base URL: the embedded simulator's URL is filled in at start */
  baseUrl: string | null;
  timeoutMs: number;
  /** accept KES cents (cards can take them; M-Pesa inside the hosted page cannot) */
  allowFractionalAmounts: boolean;
}

export const FLUTTERWAVE_BASE_URLS: Record<Exclude<HostedProviderEnv, 'simulator'>, string> = {
  // same host for test and live: the key decides the mode (flutterwave.md §1)
  sandbox: 'https://api.flutterwave.com',
  production: 'https://api.flutterwave.com',
};
export const PESAPAL_BASE_URLS: Record<Exclude<HostedProviderEnv, 'simulator'>, string> = {
  sandbox: 'https://cybqa.pesapal.com/pesapalv3',
  production: 'https://pay.pesapal.com/v3',
};
/** The card simulators' own defaults, so an API pointed at a standalone `pnpm sim:cards` works without keys. */
export const SIMULATOR_FLUTTERWAVE_SECRET_KEY = 'FLWSECK_TEST-smartduka-sim-X';
export const SIMULATOR_FLUTTERWAVE_SECRET_HASH = 'smartduka-sim-secret-hash';
export const SIMULATOR_PESAPAL_CONSUMER_KEY = 'smartduka-pesapal-sim-key';
export const SIMULATOR_PESAPAL_CONSUMER_SECRET = 'smartduka-pesapal-sim-secret';

export class ConfigValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `Invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  - ${p}`).join('\n'),
    );
    this.name = 'ConfigValidationError';
  }
}

export const SANDBOX_SHORTCODE = '174379';
/** Safaricom's public sandbox passkey (64 hex). */
export const SANDBOX_PASSKEY = 'bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919';
export const SIMULATOR_CONSUMER_KEY = 'smartduka-sim-key';
export const SIMULATOR_CONSUMER_SECRET = 'smartduka-sim-secret';
/** Safaricom's public sandbox initiator, which the simulator also accepts by default. */
export const SIMULATOR_INITIATOR_NAME = 'testapi';
export const SIMULATOR_INITIATOR_PASSWORD = 'Safaricom999!*!';

export const MPESA_BASE_URLS: Record<Exclude<MpesaEnvironment, 'simulator'>, string> = {
  sandbox: 'https://sandbox.safaricom.co.ke',
  production: 'https://api.safaricom.co.ke',
};

/**
 * Words Daraja refuses in callback URLs, in any case (daraja.md §2.4). The one list: config rejects
 * an MPESA_CALLBACK_URL with them, DarajaService warns about a callbackBaseUrl with them.
 */
export const FORBIDDEN_CALLBACK_WORDS: readonly string[] = [
  'm-pesa',
  'mpesa',
  'safaricom',
  'exe',
  'exec',
  'cmd',
  'sql',
  'query',
];

export { REPO_ROOT };

type Env = Record<string, string | undefined>;

export interface LoadConfigOptions {
  /** Persist generated development secrets here (so tokens survive restarts). Off in tests. */
  persistDevSecrets?: boolean;
}

/**
 * Validates the environment into an AppConfig. Collects every problem and throws one
 * ConfigValidationError listing them all.
 */
export function loadConfig(env: Env, options: LoadConfigOptions = {}): AppConfig {
  const problems: string[] = [];
  const str = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const int = (name: string, def: number, min: number, max: number): number => {
    const raw = str(name);
    if (raw === undefined) return def;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      problems.push(`${name} must be a whole number between ${min} and ${max} (got "${raw}")`);
      return def;
    }
    return Number(raw);
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[], def: T): T => {
    const raw = str(name);
    if (raw === undefined) return def;
    if (!(allowed as readonly string[]).includes(raw)) {
      problems.push(`${name} must be one of ${allowed.join(' | ')} (got "${raw}")`);
      return def;
    }
    return raw as T;
  };
  const bool = (name: string, def: boolean): boolean => {
    const raw = str(name)?.toLowerCase();
    if (raw === undefined) return def;
    if (['true', '1', 'yes', 'on'].includes(raw)) return true;
    if (['false', '0', 'no', 'off'].includes(raw)) return false;
    problems.push(`${name} must be true or false (got "${raw}")`);
    return def;
  };

  const nodeEnv = oneOf('NODE_ENV', ['development', 'test', 'production'] as const, 'development');
  const production = nodeEnv === 'production';
  const port = int('PORT', 3000, 0, 65535);
  const mpesaEnv =
    str('MPESA_ENV') === undefined && production
      ? (problems.push('MPESA_ENV is required when NODE_ENV=production (sandbox | production)'), 'production' as const)
      : oneOf('MPESA_ENV', ['simulator', 'sandbox', 'production'] as const, 'simulator');
  if (production && mpesaEnv === 'simulator')
    problems.push('MPESA_ENV=simulator is not allowed when NODE_ENV=production');
  const simulator = mpesaEnv === 'simulator';

  // A relative DATA_DIR is relative to where the command was run (pnpm sets INIT_CWD), not apps/api.
  const dataDir = resolve(str('INIT_CWD') ?? process.cwd(), str('DATA_DIR') ?? join(REPO_ROOT, '.data'));
  const devSecrets = simulator || !production ? devSecretStore(dataDir, options.persistDevSecrets ?? false) : undefined;

  // --- JWT
  let jwtSecret = str('JWT_SECRET');
  let jwtGenerated = false;
  if (!jwtSecret) {
    if (production) problems.push('JWT_SECRET is required in production (at least 32 characters)');
    else if (devSecrets) {
      jwtSecret = devSecrets.get('jwtSecret');
      jwtGenerated = true;
    }
  } else if (jwtSecret.length < 32) {
    problems.push('JWT_SECRET must be at least 32 characters');
  }

  // --- Merchant-account secrets at rest: no plaintext fallback, ever.
  const merchantAccounts = credentialKeys(str('CREDENTIALS_KEYS'), production, devSecrets, problems);
  merchantAccounts.platformDefault = bool('MERCHANT_ACCOUNTS_PLATFORM_DEFAULT', true);

  // --- M-Pesa credentials
  const required = (name: string, simDefault: string): string => {
    const v = str(name);
    if (v) return v;
    if (simulator) return simDefault;
    problems.push(`${name} is required when MPESA_ENV=${mpesaEnv}`);
    return '';
  };
  const consumerKey = required('MPESA_CONSUMER_KEY', SIMULATOR_CONSUMER_KEY);
  const consumerSecret = required('MPESA_CONSUMER_SECRET', SIMULATOR_CONSUMER_SECRET);
  const shortcode = required('MPESA_SHORTCODE', SANDBOX_SHORTCODE);
  if (shortcode && !/^\d{5,7}$/.test(shortcode))
    problems.push(`MPESA_SHORTCODE must be 5 to 7 digits (got "${shortcode}")`);
  const passkey = required('MPESA_PASSKEY', SANDBOX_PASSKEY);
  if (mpesaEnv === 'sandbox' && passkey === 'bfb279f9aa9bdbcf158e97dd1a503b6e') {
    problems.push(
      'MPESA_PASSKEY looks like the truncated sandbox passkey; the public sandbox passkey is 64 hex characters (see MPESA_SETUP.md)',
    );
  }
  const transactionType = oneOf('MPESA_TRANSACTION_TYPE', ['paybill', 'till'] as const, 'paybill');
  const tillNumber = str('MPESA_TILL_NUMBER');
  if (transactionType === 'till' && !tillNumber)
    problems.push('MPESA_TILL_NUMBER is required when MPESA_TRANSACTION_TYPE=till');
  if (tillNumber && !/^\d{5,7}$/.test(tillNumber))
    problems.push(`MPESA_TILL_NUMBER must be 5 to 7 digits (got "${tillNumber}")`);

  const qrMerchantName = str('MPESA_QR_MERCHANT_NAME') ?? 'SmartDuka';
  if (!/^[A-Za-z0-9 .,&'-]{1,40}$/.test(qrMerchantName))
    problems.push("MPESA_QR_MERCHANT_NAME must be 1 to 40 letters, digits, spaces or . , & ' -");

  // --- base URL
  let baseUrl: string | null =
    str('MPESA_BASE_URL') ?? (simulator ? null : MPESA_BASE_URLS[mpesaEnv as 'sandbox' | 'production']);
  if (baseUrl) {
    if (!isHttpUrl(baseUrl)) problems.push(`MPESA_BASE_URL must be an http(s) URL (got "${baseUrl}")`);
    baseUrl = baseUrl.replace(/\/+$/, '');
  }

  // --- callbacks
  let callbackUrl = str('MPESA_CALLBACK_URL');
  if (!callbackUrl) {
    if (simulator) callbackUrl = `http://127.0.0.1:${port}/payments/callback`;
    else
      problems.push(
        `MPESA_CALLBACK_URL is required when MPESA_ENV=${mpesaEnv} (public HTTPS URL ending in /payments/callback)`,
      );
  }
  if (callbackUrl) {
    callbackUrl = callbackUrl.replace(/\/+$/, '');
    problems.push(...callbackUrlProblems(callbackUrl, mpesaEnv));
  }
  // C2B URLs: next to the STK callback URL unless set (…/payments/callback → …/payments/c2b).
  let c2bBaseUrl = str('MPESA_C2B_URL');
  const c2bExplicit = c2bBaseUrl !== undefined;
  if (!c2bBaseUrl && callbackUrl && isHttpUrl(callbackUrl))
    c2bBaseUrl = /\/callback$/.test(callbackUrl)
      ? callbackUrl.replace(/\/callback$/, '/c2b')
      : `${new URL(callbackUrl).origin}/payments/c2b`;
  if (c2bBaseUrl) {
    c2bBaseUrl = c2bBaseUrl.replace(/\/+$/, '');
    // A derived one has the STK callback URL's problems, already reported under its name.
    if (c2bExplicit) problems.push(...callbackUrlProblems(c2bBaseUrl, mpesaEnv, 'MPESA_C2B_URL'));
  }
  let callbackSigningSecret = str('CALLBACK_SIGNING_SECRET');
  if (!callbackSigningSecret) {
    if (simulator && devSecrets) callbackSigningSecret = devSecrets.get('callbackSigningSecret');
    else problems.push(`CALLBACK_SIGNING_SECRET is required when MPESA_ENV=${mpesaEnv} (at least 32 characters)`);
  } else if (callbackSigningSecret.length < 32) {
    problems.push('CALLBACK_SIGNING_SECRET must be at least 32 characters');
  }
  const callbackIpAllowlist = (str('MPESA_CALLBACK_IP_ALLOWLIST') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const entry of callbackIpAllowlist) {
    if (!isAllowlistEntry(entry))
      problems.push(`MPESA_CALLBACK_IP_ALLOWLIST entry "${entry}" is not an IP address or IPv4 CIDR block`);
  }

  const securityCertificate = mpesaCertificate(mpesaEnv, str, problems);
  // The simulator's initiator is Safaricom's public sandbox one (testapi / Safaricom999!*!), like its passkey.
  const initiatorName = str('MPESA_INITIATOR_NAME') ?? (simulator ? SIMULATOR_INITIATOR_NAME : undefined);
  const initiatorPassword = str('MPESA_INITIATOR_PASSWORD') ?? (simulator ? SIMULATOR_INITIATOR_PASSWORD : undefined);
  if (str('MPESA_INITIATOR_NAME') !== undefined && str('MPESA_INITIATOR_PASSWORD') === undefined)
    problems.push('MPESA_INITIATOR_PASSWORD is required with MPESA_INITIATOR_NAME');
  if (str('MPESA_INITIATOR_PASSWORD') !== undefined && str('MPESA_INITIATOR_NAME') === undefined)
    problems.push('MPESA_INITIATOR_NAME is required with MPESA_INITIATOR_PASSWORD');

  const trustProxy = parseTrustProxy(str('TRUST_PROXY'), problems);
  const corsOrigins = parseCorsOrigins(str('CORS_ORIGINS'), nodeEnv, problems);
  // The POS dev server hands a cashier token to whoever opens it: never in production.
  const pos = { enabled: bool('POS_ENABLED', nodeEnv === 'development'), port: int('POS_PORT', 5173, 0, 65535) };
  if (pos.enabled && production)
    problems.push('POS_ENABLED=true is not allowed when NODE_ENV=production (the POS dev server carries a dev token)');

  // --- rate limits on POST /payments/stk-push. Off by default under NODE_ENV=test only (test
  // suites push to the simulator's few magic numbers over and over); tests of the limits set them.
  const rateLimitStore = oneOf('RATE_LIMIT_STORE', ['auto', 'memory', 'postgres'] as const, 'auto');
  if (rateLimitStore === 'postgres' && !str('DATABASE_URL')) {
    problems.push(
      'RATE_LIMIT_STORE=postgres needs DATABASE_URL (the limits are shared through Postgres); with the embedded PGlite database use auto or memory',
    );
  }
  const rateLimit: AppConfig['rateLimit'] = {
    store: rateLimitStore,
    shopPerMinute: int('RATE_LIMIT_SHOP_PER_MINUTE', nodeEnv === 'test' ? 0 : 120, 0, 100_000),
    phonePerWindow: int('RATE_LIMIT_PHONE_PER_WINDOW', nodeEnv === 'test' ? 0 : 1, 0, 1000),
    phoneWindowSeconds: int('RATE_LIMIT_PHONE_WINDOW_SECONDS', 30, 1, 3600),
  };
  // --- public URL + hosted providers (Flutterwave, Pesapal): required only when enabled
  let publicBaseUrl = str('PUBLIC_BASE_URL')?.replace(/\/+$/, '');
  if (publicBaseUrl && !isHttpUrl(publicBaseUrl))
    problems.push(`PUBLIC_BASE_URL must be an http(s) URL (got "${publicBaseUrl}")`);
  const posReturnUrl = str('POS_RETURN_URL');
  if (posReturnUrl && !isHttpUrl(posReturnUrl))
    problems.push(`POS_RETURN_URL must be an http(s) URL (got "${posReturnUrl}")`);
  const hosted = (
    prefix: 'FLUTTERWAVE' | 'PESAPAL',
    urls: Record<Exclude<HostedProviderEnv, 'simulator'>, string>,
  ): HostedProviderConfig => {
    const env = oneOf(
      `${prefix}_ENV`,
      ['simulator', 'sandbox', 'production'] as const,
      production ? 'production' : 'simulator',
    );
    if (production && env === 'simulator')
      problems.push(`${prefix}_ENV=simulator is not allowed when NODE_ENV=production`);
    // on by default only for `pnpm dev` (simulators); elsewhere a provider is switched on explicitly
    const enabled = bool(`${prefix}_ENABLED`, nodeEnv === 'development');
    const explicitUrl = str(`${prefix}_BASE_URL`)?.replace(/\/+$/, '');
    if (explicitUrl && !isHttpUrl(explicitUrl))
      problems.push(`${prefix}_BASE_URL must be an http(s) URL (got "${explicitUrl}")`);
    return {
      enabled,
      env,
      baseUrl: explicitUrl ?? (env === 'simulator' ? null : urls[env]),
      timeoutMs: int(`${prefix}_HTTP_TIMEOUT_MS`, 15000, 100, 120000),
      allowFractionalAmounts: bool(`${prefix}_ALLOW_CENTS`, true),
    };
  };
  const flwBase = hosted('FLUTTERWAVE', FLUTTERWAVE_BASE_URLS);
  const pesapalBase = hosted('PESAPAL', PESAPAL_BASE_URLS);
  const secret = (name: string, enabled: boolean, env: HostedProviderEnv, simDefault: string, what: string): string => {
    const v = str(name);
    if (v) return v;
    if (env === 'simulator') return simDefault;
    if (enabled) problems.push(`${name} is required when ${what} is enabled (${name.split('_')[0]}_ENV=${env})`);
    return '';
  };
  const flutterwave: AppConfig['flutterwave'] = {
    ...flwBase,
    secretKey: secret(
      'FLUTTERWAVE_SECRET_KEY',
      flwBase.enabled,
      flwBase.env,
      SIMULATOR_FLUTTERWAVE_SECRET_KEY,
      'Flutterwave',
    ),
    secretHash: secret(
      'FLUTTERWAVE_SECRET_HASH',
      flwBase.enabled,
      flwBase.env,
      SIMULATOR_FLUTTERWAVE_SECRET_HASH,
      'Flutterwave',
    ),
  };
  if (
    flutterwave.enabled &&
    flutterwave.secretHash &&
    flutterwave.secretHash.length < 16 &&
    flutterwave.env !== 'simulator'
  ) {
    problems.push(
      'FLUTTERWAVE_SECRET_HASH must be at least 16 characters (it is the only thing that authenticates webhooks)',
    );
  }
  const pesapal: AppConfig['pesapal'] = {
    ...pesapalBase,
    consumerKey: secret(
      'PESAPAL_CONSUMER_KEY',
      pesapalBase.enabled,
      pesapalBase.env,
      SIMULATOR_PESAPAL_CONSUMER_KEY,
      'Pesapal',
    ),
    consumerSecret: secret(
      'PESAPAL_CONSUMER_SECRET',
      pesapalBase.enabled,
      pesapalBase.env,
      SIMULATOR_PESAPAL_CONSUMER_SECRET,
      'Pesapal',
    ),
    ipnNotificationType: oneOf('PESAPAL_IPN_NOTIFICATION_TYPE', ['GET', 'POST'] as const, 'POST'),
    checkoutWindowSeconds: int('PESAPAL_CHECKOUT_WINDOW_SECONDS', 3600, 1, 7 * 86400),
  };
  if (!publicBaseUrl) {
    if (production && (flutterwave.enabled || pesapal.enabled))
      problems.push(
        'PUBLIC_BASE_URL is required in production when Flutterwave or Pesapal is enabled (their redirects and webhooks must reach this API)',
      );
    publicBaseUrl = `http://127.0.0.1:${port}`;
  } else if (production && (flutterwave.enabled || pesapal.enabled) && !publicBaseUrl.startsWith('https://')) {
    problems.push('PUBLIC_BASE_URL must use https in production');
  }

  const logLevel = oneOf(
    'LOG_LEVEL',
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const,
    nodeEnv === 'test' ? 'silent' : 'info',
  );

  const config: AppConfig = {
    nodeEnv,
    port,
    simulatorPort: int('SIMULATOR_PORT', 4010, 0, 65535),
    logLevel,
    logFormat: oneOf('LOG_FORMAT', ['json', 'pretty'] as const, nodeEnv === 'development' ? 'pretty' : 'json'),
    databaseUrl: str('DATABASE_URL'),
    databasePoolSize: int('DATABASE_POOL_SIZE', 20, 1, 500),
    databaseConnectTimeoutMs: int('DATABASE_CONNECT_TIMEOUT_MS', 5000, 100, 60000),
    databaseStatementTimeoutMs: int('DATABASE_STATEMENT_TIMEOUT_MS', 30000, 0, 600000),
    dataDir,
    trustProxy,
    shutdownDrainMs: int('SHUTDOWN_DRAIN_MS', 0, 0, 120_000),
    metricsToken: metricsTokenOf(str('METRICS_TOKEN'), problems),
    corsOrigins,
    liveStatus: {
      heartbeatMs: int('EVENT_STREAM_HEARTBEAT_MS', 15_000, 100, 300_000),
      maxStreams: int('EVENT_STREAM_MAX', 2000, 1, 100_000),
      maxStreamsPerShop: int('EVENT_STREAM_MAX_PER_SHOP', 50, 1, 100_000),
      retentionHours: int('PAYMENT_EVENTS_RETENTION_HOURS', 24, 1, 720),
    },
    pos,
    rateLimit,
    merchantAccounts,
    jwt: {
      secret: jwtSecret ?? '',
      generated: jwtGenerated,
      clockToleranceSeconds: int('JWT_CLOCK_TOLERANCE_SECONDS', 30, 0, 300),
      maxLifetimeSeconds: int('JWT_MAX_LIFETIME_SECONDS', 24 * 3600, 60, 30 * 24 * 3600),
    },
    mpesa: {
      env: mpesaEnv,
      baseUrl,
      consumerKey,
      consumerSecret,
      shortcode,
      passkey,
      transactionType,
      tillNumber,
      callbackUrl: callbackUrl ?? '',
      callbackSigningSecret: callbackSigningSecret ?? '',
      callbackIpAllowlist,
      httpTimeoutMs: int('MPESA_HTTP_TIMEOUT_MS', 15000, 100, 120000),
      httpKeepAliveMs: int('MPESA_HTTP_KEEP_ALIVE_MS', 2000, 0, 30000),
      statusQueryAfterSeconds: int('MPESA_STATUS_QUERY_AFTER_SECONDS', 5, 0, 3600),
      notFoundFailAfterSeconds: int('MPESA_NOT_FOUND_FAIL_AFTER_SECONDS', 120, 0, 86400),
      unresolvedReviewAfterSeconds: int('MPESA_UNRESOLVED_REVIEW_AFTER_SECONDS', 300, 0, 86400),
      securityCertificate,
      initiatorName,
      initiatorPassword,
      reversalWaitSeconds: int('MPESA_REVERSAL_WAIT_SECONDS', 300, 0, 86400),
      qrMerchantName,
      qrSize: int('MPESA_QR_SIZE', 300, 100, 1000),
      c2b: {
        baseUrl: c2bBaseUrl ?? '',
        apiVersion: oneOf('MPESA_C2B_API_VERSION', ['v1', 'v2'] as const, 'v1'),
        validationBudgetMs: int('MPESA_C2B_VALIDATION_BUDGET_MS', 3000, 100, 7000),
        pull: {
          enabled: bool('MPESA_C2B_PULL_ENABLED', true),
          intervalMs: int('MPESA_C2B_PULL_INTERVAL_MS', 900_000, 1000, 86_400_000),
          // 1 h and a margin; Daraja keeps 48 h.
          lookbackSeconds: int('MPESA_C2B_PULL_LOOKBACK_SECONDS', 5400, 60, 172_800),
        },
      },
    },
    publicBaseUrl,
    posReturnUrl,
    flutterwave,
    pesapal,
    callbackApply: {
      concurrency: int('CALLBACK_APPLY_CONCURRENCY', 4, 1, 64),
      batch: int('CALLBACK_APPLY_BATCH', 16, 1, 500),
      queueMax: int('CALLBACK_APPLY_QUEUE_MAX', 10_000, 1, 1_000_000),
    },
    reconciler: {
      enabled: bool('RECONCILER_ENABLED', true),
      intervalMs: int('RECONCILER_INTERVAL_MS', 5000, 50, 3_600_000),
      batchSize: int('RECONCILER_BATCH_SIZE', 50, 1, 1000),
      leaseSeconds: int('RECONCILER_LEASE_SECONDS', 60, 1, 3600),
      pendingGraceSeconds: int('RECONCILER_PENDING_GRACE_SECONDS', 30, 0, 3600),
      backoffBaseSeconds: int('RECONCILER_BACKOFF_BASE_SECONDS', 10, 0, 3600),
      backoffMaxSeconds: int('RECONCILER_BACKOFF_MAX_SECONDS', 300, 0, 86400),
      maxQueries: int('RECONCILER_MAX_QUERIES', 12, 1, 1000),
      giveUpAfterSeconds: int('RECONCILER_GIVE_UP_AFTER_SECONDS', 3600, 1, 7 * 86400),
      inboxRetryAfterSeconds: int('RECONCILER_INBOX_RETRY_AFTER_SECONDS', 30, 0, 86400),
      inboxRetentionDays: int('CALLBACK_INBOX_RETENTION_DAYS', 30, 1, 3650),
      refundFirstLookSeconds: int('REFUND_FIRST_LOOK_SECONDS', 120, 0, 86400),
      refundMaxLooks: int('REFUND_MAX_LOOKS', 30, 1, 1000),
    },
  };
  const pull = config.mpesa.c2b.pull;
  // A window shorter than the interval leaves gaps no pass ever looks at.
  if (pull.enabled && pull.lookbackSeconds * 1000 < pull.intervalMs)
    problems.push('MPESA_C2B_PULL_LOOKBACK_SECONDS must cover MPESA_C2B_PULL_INTERVAL_MS (passes would leave gaps)');
  if (config.reconciler.backoffMaxSeconds < config.reconciler.backoffBaseSeconds)
    problems.push('RECONCILER_BACKOFF_MAX_SECONDS must be at least RECONCILER_BACKOFF_BASE_SECONDS');
  if (config.databaseUrl && !/^postgres(ql)?:\/\//.test(config.databaseUrl))
    problems.push('DATABASE_URL must start with postgres:// or postgresql://');
  if (production && !config.databaseUrl)
    problems.push('DATABASE_URL is required in production (the embedded PGlite database is for development)');
  if (problems.length) throw new ConfigValidationError(problems);
  return config;
}

/** Where each environment's certificate is when none is configured (the simulator's test one; Safaricom's public sandbox one). */
export const DEFAULT_MPESA_CERT_FILES: Partial<Record<MpesaEnvironment, string>> = {
  simulator: join(REPO_ROOT, 'packages/daraja-simulator/certs/simulator-test-cert.pem'),
  sandbox: join(REPO_ROOT, 'apps/api/certs/mpesa-sandbox.cer'),
};
/** The fingerprint the shipped sandbox file must have (daraja.md §5.3, checked with openssl on mpesa-node 0.1.3). */
export const SANDBOX_CERT_SHA256 =
  'A5:42:C3:C6:7B:59:8A:33:7A:1C:C7:41:E5:43:4C:70:DE:56:50:81:E5:C8:53:E0:5A:51:C8:43:76:47:66:F0';

/**
 * The SecurityCredential certificate: MPESA_CERT_PEM (the PEM itself) or MPESA_CERT_FILE (a path),
 * else the environment's shipped default (simulator: the simulator's test certificate; sandbox:
 * Safaricom's public sandbox certificate, pinned to its known fingerprint); production has no
 * default (it comes from the Daraja portal at go-live). MPESA_CERT_SHA256 pins the fingerprint:
 * a mismatch refuses the boot, saying both.
 */
function mpesaCertificate(
  env: MpesaEnvironment,
  str: (name: string) => string | undefined,
  problems: string[],
): SecurityCertificate | null {
  const pemVar = str('MPESA_CERT_PEM');
  const fileVar = str('MPESA_CERT_FILE');
  const pinVar = str('MPESA_CERT_SHA256');
  if (pemVar && fileVar) {
    problems.push('Set MPESA_CERT_PEM or MPESA_CERT_FILE, not both');
    return null;
  }
  let pin: string | undefined;
  if (pinVar) {
    pin = normaliseFingerprint(pinVar);
    if (!pin) {
      problems.push('MPESA_CERT_SHA256 must be a SHA-256 fingerprint: 64 hex digits (colons allowed)');
      return null;
    }
  }
  let text: string;
  let source: string;
  if (pemVar) {
    text = pemVar;
    source = 'MPESA_CERT_PEM';
  } else {
    const defaultFile = DEFAULT_MPESA_CERT_FILES[env];
    const file = fileVar ? resolve(str('INIT_CWD') ?? process.cwd(), fileVar) : defaultFile;
    if (!file) {
      if (pin) problems.push(`MPESA_CERT_SHA256 is set but no certificate is: set MPESA_CERT_FILE or MPESA_CERT_PEM`);
      return null;
    }
    source = fileVar ? `MPESA_CERT_FILE (${file})` : `the default ${env} certificate (${file})`;
    if (!existsSync(file)) {
      problems.push(`${source} does not exist`);
      return null;
    }
    text = readFileSync(file, 'utf8');
    if (!fileVar && env === 'sandbox') pin ??= SANDBOX_CERT_SHA256;
  }
  let cert: SecurityCertificate;
  try {
    cert = loadSecurityCertificate(text, source);
  } catch (err) {
    problems.push((err as Error).message);
    return null;
  }
  if (pin && cert.sha256 !== pin) {
    problems.push(
      `The M-Pesa certificate from ${source} has SHA-256 fingerprint ${cert.sha256}, but ${pinVar ? 'MPESA_CERT_SHA256' : 'the sandbox certificate'} is ${pin}: wrong file, or the pin is out of date`,
    );
    return null;
  }
  if (env === 'production' && cert.subject.includes(`CN=${SANDBOX_CERT_COMMON_NAME}`))
    problems.push(`${source} is Safaricom's SANDBOX certificate but MPESA_ENV=production: use the production one`);
  if (env !== 'simulator' && cert.subject.includes(`CN=${SIMULATOR_CERT_COMMON_NAME}`))
    problems.push(`${source} is the Daraja simulator's test certificate but MPESA_ENV=${env}`);
  return { ...cert, pinned: pin !== undefined };
}

/** The POS dev app's origins (apps/pos under `pnpm dev`), allowed by default in development only. */
export const DEV_POS_ORIGINS = ['http://localhost:5173', 'http://127.0.0.1:5173'];

/**
 * CORS_ORIGINS: a comma list of exact origins. A wildcard is refused (the API takes bearer tokens
 * and money: every allowed site is named), and so is anything with a path, query or credentials.
 */
export function parseCorsOrigins(raw: string | undefined, nodeEnv: AppConfig['nodeEnv'], problems: string[]): string[] {
  if (raw === undefined) return nodeEnv === 'development' ? [...DEV_POS_ORIGINS] : [];
  const origins: string[] = [];
  for (const entry of raw.split(',').map((e) => e.trim())) {
    if (entry === '') continue;
    let url: URL | undefined;
    try {
      url = new URL(entry);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== entry.replace(/\/$/, '')) {
      problems.push(`CORS_ORIGINS entries must be origins like https://pos.example.com (got "${entry}")`);
      continue;
    }
    if (nodeEnv === 'production' && url.protocol !== 'https:' && !['localhost', '127.0.0.1'].includes(url.hostname))
      problems.push(`CORS_ORIGINS must use https in production (got "${entry}")`);
    if (!origins.includes(url.origin)) origins.push(url.origin);
  }
  return origins;
}

export function callbackUrlProblems(url: string, env: MpesaEnvironment, name = 'MPESA_CALLBACK_URL'): string[] {
  const problems: string[] = [];
  if (!isHttpUrl(url)) return [`${name} must be an http(s) URL (got "${url}")`];
  const u = new URL(url);
  if (env === 'production' && u.protocol !== 'https:') problems.push(`${name} must use https in production`);
  if (/\s/.test(url)) problems.push(`${name} must not contain spaces`);
  if (u.search)
    problems.push(
      `${name} must not have a query string (Daraja forbids the word "query"; the capability token goes in the path)`,
    );
  const lower = url.toLowerCase();
  const bad = FORBIDDEN_CALLBACK_WORDS.filter((w) => lower.includes(w));
  if (bad.length)
    problems.push(`${name} must not contain ${bad.map((w) => `"${w}"`).join(', ')}: Daraja rejects such URLs`);
  const rawHost = url.replace(/^[a-z]+:\/\//i, '').split(/[/:]/)[0];
  if (rawHost !== rawHost.toLowerCase())
    problems.push(`${name} host must be lowercase (Daraja has rejected uppercase hosts)`);
  return problems;
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

function isAllowlistEntry(entry: string): boolean {
  if (isIP(entry)) return true;
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(entry);
  return !!m && isIP(m[1]) === 4 && Number(m[2]) <= 32;
}

function parseTrustProxy(raw: string | undefined, problems: string[]): boolean | number | string {
  if (raw === undefined || raw === 'false') return false;
  if (raw === 'true') return true;
  if (/^\d+$/.test(raw)) return Number(raw);
  const parts = raw.split(',').map((s) => s.trim());
  const named = ['loopback', 'linklocal', 'uniquelocal'];
  if (
    parts.every((p) => named.includes(p) || isIP(p) || /^[\d.]+\/\d{1,2}$/.test(p) || /^[0-9a-f:]+\/\d{1,3}$/i.test(p))
  )
    return raw;
  problems.push(
    `TRUST_PROXY must be true, false, a hop count, or a comma list of addresses/subnets/loopback (got "${raw}")`,
  );
  return false;
}

/** Loads the first .env found (cwd where the command was run, then the repo root). Optional: every variable has a dev default. */
export function loadDotEnv(env: Env = process.env): void {
  for (const dir of [env.INIT_CWD, process.cwd(), REPO_ROOT]) {
    if (!dir) continue;
    const file = join(dir, '.env');
    if (existsSync(file)) {
      process.loadEnvFile(file);
      return;
    }
  }
}

const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;

/** CREDENTIALS_KEYS: "<id>:<base64 of 32 bytes>" entries, comma-separated, the first encrypts. */
export function credentialKeys(
  raw: string | undefined,
  production: boolean,
  devSecrets: { get(name: string): string } | undefined,
  problems: string[],
): AppConfig['merchantAccounts'] {
  const result: AppConfig['merchantAccounts'] = { keys: [], keysGenerated: false, platformDefault: true };
  if (!raw) {
    if (production || !devSecrets) {
      problems.push(
        'CREDENTIALS_KEYS is required in production: "<key id>:<base64 of 32 random bytes>" (e.g. `openssl rand -base64 32`); shops\' provider secrets are encrypted with it',
      );
    } else {
      result.keys.push({ id: 'dev', key: Buffer.from(devSecrets.get('credentialsKey'), 'base64url') });
      result.keysGenerated = true;
    }
    return result;
  }
  const seen = new Set<string>();
  raw.split(',').forEach((entry, i) => {
    const at = entry.indexOf(':');
    const id = at > 0 ? entry.slice(0, at).trim() : '';
    const material = at > 0 ? entry.slice(at + 1).trim() : '';
    if (!KEY_ID.test(id)) {
      problems.push(`CREDENTIALS_KEYS entry ${i + 1} needs a key id of 1-32 letters, digits, _ or - before ":"`);
      return;
    }
    if (seen.has(id)) problems.push(`CREDENTIALS_KEYS names key id "${id}" twice`);
    seen.add(id);
    const key = /^[A-Za-z0-9+/_-]+={0,2}$/.test(material) ? Buffer.from(material, 'base64') : Buffer.alloc(0);
    if (key.length !== 32) {
      problems.push(`CREDENTIALS_KEYS key "${id}" must be 32 bytes in base64 (got ${key.length} bytes)`);
      return;
    }
    result.keys.push({ id, key });
  });
  return result;
}

/** Development-only secrets: generated randomly, optionally kept in the git-ignored data folder. */
function devSecretStore(dataDir: string, persist: boolean) {
  const file = join(dataDir, 'dev-secrets.json');
  let stored: Record<string, string> = {};
  if (persist && existsSync(file)) {
    try {
      stored = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
    } catch {
      stored = {};
    }
  }
  return {
    get(name: string): string {
      if (stored[name]) return stored[name];
      stored[name] = randomBytes(32).toString('base64url');
      if (persist) {
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, JSON.stringify(stored, null, 2), { mode: 0o600 });
      }
      return stored[name];
    },
  };
}

/** METRICS_TOKEN: unset (no /metrics), or a bearer secret of at least 24 visible characters. */
function metricsTokenOf(raw: string | undefined, problems: string[]): string | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  if (!/^[\x21-\x7e]{24,512}$/.test(raw)) {
    problems.push('METRICS_TOKEN must be 24–512 visible ASCII characters without spaces (e.g. openssl rand -hex 32)');
    return undefined;
  }
  return raw;
}
