import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
  boolean,
} from 'drizzle-orm/pg-core';

/**
 * Money is integer minor units (bigint, read as JS bigint) plus an ISO currency code.
 * Statuses are text with CHECK constraints (not Postgres enums) so migrations stay simple.
 */

export const orders = pgTable(
  'orders',
  {
    shopId: text('shop_id').notNull(),
    id: text('id').notNull(),
    totalMinor: bigint('total_minor', { mode: 'bigint' }).notNull(),
    currency: text('currency').notNull().default('KES'),
    /** Set exactly once, when completed payments first cover the total. */
    paidAt: timestamp('paid_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.shopId, t.id] }), check('orders_total_positive', sql`${t.totalMinor} > 0`)],
);

export const PAYMENT_STATUSES = [
  'initiated',
  'pending',
  'unresolved',
  'completed',
  'failed',
  'cancelled',
  'expired',
  'review',
] as const;

export const payments = pgTable(
  'payments',
  {
    id: uuid('id').primaryKey(),
    shopId: text('shop_id').notNull(),
    orderId: text('order_id').notNull(),
    amountMinor: bigint('amount_minor', { mode: 'bigint' }).notNull(),
    currency: text('currency').notNull(),
    provider: text('provider').notNull(),
    status: text('status').notNull(),
    statusReason: text('status_reason'),
    resultCode: text('result_code'),
    resultDesc: text('result_desc'),
    idempotencyKey: text('idempotency_key'),
    createdBy: text('created_by').notNull(),
    /** Ours, unique: the Flutterwave tx_ref / Pesapal merchant reference (null for M-Pesa). */
    providerReference: text('provider_reference'),
    /** The provider's id of the transaction: Flutterwave transaction id, Pesapal OrderTrackingId (M-Pesa uses checkout_request_id). */
    providerTransactionId: text('provider_transaction_id'),
    /** Provider confirmation code (Flutterwave flw_ref, Pesapal confirmation_code). */
    providerReceipt: text('provider_receipt'),
    paymentMethod: text('payment_method'),
    /** Hosted checkout link the customer pays on (Flutterwave/Pesapal). */
    checkoutUrl: text('checkout_url'),
    // M-Pesa attempt columns
    phoneMasked: text('phone_masked'),
    /** HMAC-SHA256 (key derived from CALLBACK_SIGNING_SECRET) of the normalised MSISDN: find a customer's payments without storing the number. */
    phoneHash: text('phone_hash'),
    accountReference: text('account_reference'),
    transactionDesc: text('transaction_desc'),
    merchantRequestId: text('merchant_request_id'),
    checkoutRequestId: text('checkout_request_id'),
    mpesaReceiptNumber: text('mpesa_receipt_number'),
    /** yyyyMMddHHmmss Nairobi time, as Daraja reports it */
    transactionDate: text('transaction_date'),
    queryCount: integer('query_count').notNull().default(0),
    lastQueriedAt: timestamp('last_queried_at', { withTimezone: true }),
    /** The claim time (last_queried_at) of the latest provider lookup that got an answer: stored notifications received before it were answered by it. */
    lastAnsweredAt: timestamp('last_answered_at', { withTimezone: true }),
    /** When the reconciler may next look at this open payment (null = created_at + grace). Doubles as its claim lease. */
    nextCheckAt: timestamp('next_check_at', { withTimezone: true }),
    /** STK queries made by the reconciler (bounded by RECONCILER_MAX_QUERIES; drives its backoff) */
    reconcileAttempts: integer('reconcile_attempts').notNull().default(0),
    completedAt: timestamp('completed_at', { withTimezone: true }),
    /**
     * The merchant account (merchant_accounts.id) whose credentials made this payment: every later
     * call for it (status query, reconciler, refund) uses that account, whatever the shop's account
     * is by then. Null = the platform's account from the environment.
     */
    merchantAccountId: uuid('merchant_account_id'),
    /** When a manager released the order of this OUTCOME_UNKNOWN payment (it no longer blocks a new payment; the truth still settles it). */
    releasedAt: timestamp('released_at', { withTimezone: true }),
    /**
     * How a person resolved this payment in review (payments/refunds.service.ts resolveReview):
     * refunded (a refund of all of it was requested; cleared if that refund fails), accepted (the
     * money stays, against this or another order: the payment is completed), released (closed with
     * a note, nothing sent). Null while it still needs a person.
     */
    resolution: text('resolution'),
    resolutionNote: text('resolution_note'),
    resolvedBy: text('resolved_by'),
    resolvedAt: timestamp('resolved_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check('payments_amount_positive', sql`${t.amountMinor} > 0`),
    // Receipts are stored trimmed of ASCII blanks and upper-case, so the unique index compares them
    // that way (the same definition as normaliseMpesaReceipt: payments/daraja/receipt.ts).
    check(
      'payments_mpesa_receipt_normalised',
      sql`${t.mpesaReceiptNumber} = upper(regexp_replace(${t.mpesaReceiptNumber}, '^[ \\t\\n\\v\\f\\r]+|[ \\t\\n\\v\\f\\r]+$', '', 'g'))`,
    ),
    check(
      'payments_resolution_valid',
      sql`${t.resolution} is null or ${t.resolution} in ('refunded','accepted','released')`,
    ),
    check(
      'payments_status_valid',
      sql`${t.status} in ('initiated','pending','unresolved','completed','failed','cancelled','expired','review')`,
    ),
    uniqueIndex('payments_checkout_request_id_uq').on(t.checkoutRequestId),
    uniqueIndex('payments_mpesa_receipt_uq').on(t.mpesaReceiptNumber),
    uniqueIndex('payments_provider_reference_uq').on(t.provider, t.providerReference),
    uniqueIndex('payments_provider_transaction_uq').on(t.provider, t.providerTransactionId),
    // One payment per order that may still take the customer's money: in flight, or in review
    // because its outcome is unknown (until it is settled or a manager releases the order).
    uniqueIndex('payments_one_in_flight_per_order_uq')
      .on(t.shopId, t.orderId)
      .where(
        sql`${t.status} in ('initiated','pending','unresolved') or (${t.status} = 'review' and ${t.statusReason} = 'OUTCOME_UNKNOWN' and ${t.releasedAt} is null)`,
      ),
    index('payments_shop_order_idx').on(t.shopId, t.orderId),
    index('payments_open_idx')
      .on(t.status, t.createdAt)
      .where(sql`${t.status} in ('initiated','pending','unresolved')`),
    // The end-of-day report (payments/reports.repository.ts) filters final payments by this very
    // expression (completed by completed_at, the others by created_at): the index must match it
    // exactly to be used. bench/daily-report.bench.ts measures it.
    index('payments_report_idx')
      .on(t.shopId, sql`(case when ${t.status} = 'completed' then ${t.completedAt} else ${t.createdAt} end)`)
      .where(sql`${t.status} in ('completed', 'failed', 'cancelled', 'expired')`),
    // Payments that need a person: GET /payments/review (per shop) and the review gauge of
    // GET /metrics (all shops, every scrape) read only these few rows, not the whole table.
    index('payments_review_idx')
      .on(t.shopId, t.createdAt)
      .where(sql`${t.status} = 'review' and ${t.resolution} is null`),
  ],
);

/** Append-only audit log: provider request/response summaries, callbacks received, status transitions. */
export const paymentEvents = pgTable(
  'payment_events',
  {
    id: bigserial('id', { mode: 'bigint' }).primaryKey(),
    paymentId: uuid('payment_id'),
    type: text('type').notNull(),
    fromStatus: text('from_status'),
    toStatus: text('to_status'),
    /** who or what caused it: user:<sub>, daraja:callback, daraja:query, system */
    actor: text('actor').notNull(),
    data: jsonb('data'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('payment_events_payment_idx').on(t.paymentId, t.id)],
);

/** Every callback body exactly as received, stored before it is acknowledged. */
export const callbackInbox = pgTable(
  'callback_inbox',
  {
    id: bigserial('id', { mode: 'bigint' }).primaryKey(),
    provider: text('provider').notNull(),
    /** payment id from the capability URL, if any (not trusted until the token verifies); for a refund result, the refund id */
    urlPaymentId: text('url_payment_id'),
    /**
     * What the body is an answer to: null = a payment notification (STK callback, webhook, IPN);
     * otherwise the provider's own kind, e.g. M-Pesa 'reversal_result', 'reversal_timeout',
     * 'status_result' (Transaction Status for a refund or a payment), Flutterwave 'refund_webhook'.
     */
    kind: text('kind'),
    verified: boolean('verified').notNull(),
    checkoutRequestId: text('checkout_request_id'),
    sourceIp: text('source_ip'),
    rawBody: text('raw_body').notNull(),
    receivedAt: timestamp('received_at', { withTimezone: true }).notNull().defaultNow(),
    processedAt: timestamp('processed_at', { withTimezone: true }),
    /** what processing concluded: applied, duplicate, unknown_payment, mismatch, ... */
    outcome: text('outcome'),
    /** processing attempts (the first, in the request, and the reconciler's retries) */
    attempts: integer('attempts').notNull().default(0),
    /** an unprocessed row is retried by the reconciler from this time (also its claim lease) */
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }),
    /**
     * Unverified deliveries only: <group>|<time window>|<slot> (PaymentsRepository.storeCoalescedCallback).
     * The group is a payment (mpesa|co:<CheckoutRequestID>, pesapal|payment:<id>) or, for deliveries
     * that name no payment of ours, a kind (mpesa|kind:unknown_payment, ...|kind:invalid_shape,
     * flutterwave|kind:rejected_unverified). Repeats in the same window are counted on the row
     * (`repeats`) instead of each adding a row and a confirmation. Null for verified callbacks:
     * each of those is stored on its own.
     */
    coalesceKey: text('coalesce_key'),
    /** further deliveries counted on this row (same coalesce_key); their bodies are not kept (the row keeps the first) */
    repeats: integer('repeats').notNull().default(0),
    lastReceivedAt: timestamp('last_received_at', { withTimezone: true }),
  },
  (t) => [
    index('callback_inbox_unprocessed_idx')
      .on(t.receivedAt)
      .where(sql`${t.processedAt} is null`),
    index('callback_inbox_checkout_idx').on(t.checkoutRequestId),
    uniqueIndex('callback_inbox_coalesce_uq').on(t.coalesceKey),
    // The retention job (ReconcilerService): processed unverified rows, oldest first.
    index('callback_inbox_retention_idx')
      .on(t.processedAt)
      .where(sql`${t.verified} = false and ${t.processedAt} is not null`),
  ],
);

export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    shopId: text('shop_id').notNull(),
    key: text('key').notNull(),
    /** keyed HMAC of method + path + canonical body (hashRequest: a plain hash of a body with a phone in it could be reversed) */
    requestHash: text('request_hash').notNull(),
    paymentId: uuid('payment_id'),
    /** the refund a refund request with this key created */
    refundId: uuid('refund_id'),
    responseStatus: integer('response_status'),
    responseBody: jsonb('response_body'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.shopId, t.key] })],
);

/**
 * Provider OAuth access tokens shared by all API instances (one row per Daraja app:
 * key = base URL + sha256 of the consumer key, never the secret). `token` is a short-lived
 * (≈1 h) bearer credential: never log it. `expires_at` is when instances stop handing it out
 * (Daraja's expiry minus the early-refresh margin). Written only under an advisory lock.
 */
export const providerTokens = pgTable('provider_tokens', {
  key: text('key').primaryKey(),
  token: text('token').notNull(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/** Small per-deployment provider state, e.g. the Pesapal IPN registration (key = provider:what:env). */
export const providerSettings = pgTable('provider_settings', {
  key: text('key').primaryKey(),
  value: jsonb('value').notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

export const REFUND_STATUSES = ['requested', 'pending', 'unknown', 'succeeded', 'failed', 'review'] as const;
export const REFUND_SOURCES = ['request', 'review', 'provider'] as const;

/**
 * Money given back on a payment (payments/refunds.service.ts). One row per refund the shop asked
 * for (source request, or review: resolving a payment in review) or the provider reported on its
 * own (source provider: a chargeback, Pesapal's reversed). Statuses:
 * - requested: written, not yet sent (or the process died sending it: the reconciler asks the
 *   provider before anything is sent again)
 * - pending: the provider took it; its result is awaited (M-Pesa's ResultURL, Pesapal's approval)
 * - unknown: the provider's answer is missing (timeout, queue timeout); settled by asking
 *   (Transaction Status, GET refund), never by sending it again blindly
 * - succeeded | failed: final, never left
 * - review: the reconciler gave up, or the provider's report did not add up; a person must look.
 * The sum of a payment's refunds that are not failed never exceeds what the payment collected
 * (checked under the payment's row lock).
 */
export const refunds = pgTable(
  'refunds',
  {
    id: uuid('id').primaryKey(),
    paymentId: uuid('payment_id').notNull(),
    shopId: text('shop_id').notNull(),
    orderId: text('order_id').notNull(),
    provider: text('provider').notNull(),
    /** The payment's merchant account (null = the platform's): the refund is sent with it. */
    merchantAccountId: uuid('merchant_account_id'),
    amountMinor: bigint('amount_minor', { mode: 'bigint' }).notNull(),
    currency: text('currency').notNull(),
    status: text('status').notNull(),
    /** Our code for the outcome (ALREADY_REVERSED, UNKNOWN_RECEIPT, INITIATOR_INVALID, GAVE_UP, ...). */
    statusReason: text('status_reason'),
    /** The provider's own result code and message (safe to show). */
    resultCode: text('result_code'),
    resultDesc: text('result_desc'),
    /** Why the shop gives the money back (the person's words). */
    reason: text('reason').notNull(),
    source: text('source').notNull(),
    /** user:<sub> or <provider>:<what> */
    requestedBy: text('requested_by').notNull(),
    idempotencyKey: text('idempotency_key'),
    /** The provider's id of the refund: Flutterwave refund id, M-Pesa reversal receipt, Pesapal's none. */
    providerRefundId: text('provider_refund_id'),
    /** The provider's own state for this refund (M-Pesa conversation ids, status queries sent). */
    providerData: jsonb('provider_data').notNull().default({}),
    /** Times the refund was sent to the provider. */
    submissions: integer('submissions').notNull().default(0),
    /** Reconciler looks so far (drives its backoff and give-up). */
    reconcileAttempts: integer('reconcile_attempts').notNull().default(0),
    /** When the reconciler may next look at this open refund. */
    nextCheckAt: timestamp('next_check_at', { withTimezone: true }),
    /**
     * Whoever talks to the provider about this refund holds it until then (the request sending it,
     * a reconciler look, a manager's reconcile-now): one at a time across instances, so a refund is
     * never sent (or asked about) twice at once; a crashed holder's claim ends with its lease.
     */
    claimedUntil: timestamp('claimed_until', { withTimezone: true }),
    /** Who holds the claim (a random token per holder): only the holder renews or releases it. */
    claimedBy: uuid('claimed_by'),
    completedAt: timestamp('completed_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check('refunds_amount_positive', sql`${t.amountMinor} > 0`),
    check('refunds_status_valid', sql`${t.status} in ('requested','pending','unknown','succeeded','failed','review')`),
    check('refunds_source_valid', sql`${t.source} in ('request','review','provider')`),
    index('refunds_payment_idx').on(t.paymentId, t.createdAt),
    index('refunds_order_idx').on(t.shopId, t.orderId),
    uniqueIndex('refunds_provider_refund_uq').on(t.provider, t.providerRefundId),
    index('refunds_open_idx')
      .on(t.nextCheckAt)
      .where(sql`${t.status} in ('requested','pending','unknown')`),
    // The end-of-day report's refunds, by the same expression as its query.
    index('refunds_report_idx')
      .on(t.shopId, sql`(coalesce(${t.completedAt}, ${t.updatedAt}))`)
      .where(sql`${t.status} = 'succeeded'`),
  ],
);

export const MERCHANT_ACCOUNT_PROVIDERS = ['mpesa', 'flutterwave', 'pesapal'] as const;

/**
 * A shop's own account with a provider (payments/merchant-accounts). Rows are immutable once a
 * payment may have used them: replacing a shop's account retires the old row (retired_at) and
 * inserts a new one, so an in-flight payment keeps querying with the credentials it was made with.
 * At most one active (not retired) row per shop and provider.
 *
 * `secrets` is AES-256-GCM ciphertext (common/secret-box.ts) of a JSON object of the provider's
 * secret fields, bound to the row id and provider; `key_id` names the key-ring key that sealed it.
 * A row with `credentials_shop_id` has no secrets of its own: it uses the active account of that
 * shop (a chain's head office) for credentials and shortcode, with its own settings (till number).
 */
export const merchantAccounts = pgTable(
  'merchant_accounts',
  {
    id: uuid('id').primaryKey(),
    shopId: text('shop_id').notNull(),
    provider: text('provider').notNull(),
    environment: text('environment').notNull(),
    /** Non-secret fields (M-Pesa: shortcode, transactionType, tillNumber, initiatorName). */
    settings: jsonb('settings').notNull(),
    /** Chain: the shop whose active account lends this one its credentials (and shortcode). */
    credentialsShopId: text('credentials_shop_id'),
    secrets: text('secrets'),
    keyId: text('key_id'),
    /** Per secret field: a short fingerprint (keyed hash prefix), never the value. */
    fingerprints: jsonb('fingerprints').notNull(),
    /** The last verification: per part, ok | failed | not_verifiable, with a message. */
    verification: jsonb('verification'),
    verifiedAt: timestamp('verified_at', { withTimezone: true }),
    createdBy: text('created_by').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    retiredAt: timestamp('retired_at', { withTimezone: true }),
  },
  (t) => [
    check('merchant_accounts_provider_valid', sql`${t.provider} in ('mpesa','flutterwave','pesapal')`),
    check(
      'merchant_accounts_secrets_or_link',
      sql`(${t.secrets} is not null and ${t.keyId} is not null and ${t.credentialsShopId} is null) or (${t.secrets} is null and ${t.keyId} is null and ${t.credentialsShopId} is not null)`,
    ),
    uniqueIndex('merchant_accounts_one_active_uq')
      .on(t.shopId, t.provider)
      .where(sql`${t.retiredAt} is null`),
    index('merchant_accounts_key_idx').on(t.keyId),
    index('merchant_accounts_link_idx')
      .on(t.credentialsShopId, t.provider)
      .where(sql`${t.credentialsShopId} is not null and ${t.retiredAt} is null`),
  ],
);

/** Who changed what on a shop's configuration, and when: field names only, never values. */
export const auditEvents = pgTable(
  'audit_events',
  {
    id: bigserial('id', { mode: 'bigint' }).primaryKey(),
    shopId: text('shop_id').notNull(),
    /** user:<sub> (role) or system:<what> */
    actor: text('actor').notNull(),
    /** e.g. merchant_account.replaced, merchant_account.verified, merchant_account.removed, merchant_account.reencrypted */
    action: text('action').notNull(),
    /** e.g. merchant_account:<id> */
    target: text('target').notNull(),
    data: jsonb('data'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('audit_events_shop_idx').on(t.shopId, t.id)],
);

/**
 * Every visible change of a payment (status, status reason, release, resolution), written by a
 * trigger on payments (migration 0010) with a snapshot of the row as it was then, and announced
 * with NOTIFY payment_status '<id> <shop_id> <payment_id>' at commit. The live status streams
 * (payments/payment-events.*) deliver these and replay them on resumption. Ids are assigned at
 * insert, so they are ordered per payment (its row lock serialises its changes) but not across
 * payments; created_at is the clock at insert, for the replay window. Pruned after a day.
 */
export const paymentStatusEvents = pgTable(
  'payment_status_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    shopId: text('shop_id').notNull(),
    paymentId: uuid('payment_id').notNull(),
    status: text('status').notNull(),
    /** to_jsonb(payments row) at the change. */
    snapshot: jsonb('snapshot').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('payment_status_events_shop_idx').on(t.shopId, t.id),
    index('payment_status_events_payment_idx').on(t.paymentId, t.id),
    index('payment_status_events_created_idx').on(t.createdAt),
  ],
);

/**
 * Daraja Pull Transactions registrations (daraja-more.md §2): one per environment and shortcode,
 * since Safaricom registers a shortcode once and for good. Its existence is what tells a query's
 * `1001` "no rows" from "not provisioned". Never holds the nominated number or a capability token.
 */
export const mpesaPullRegistrations = pgTable(
  'mpesa_pull_registrations',
  {
    id: uuid('id').primaryKey(),
    environment: text('environment').notNull(),
    shortcode: text('shortcode').notNull(),
    /** The shop whose account asked, and that account (null = the platform's). */
    shopId: text('shop_id').notNull(),
    merchantAccountId: uuid('merchant_account_id'),
    /** registered: Daraja said 1000; already_registered: 1001 "already Registered" (its callback URL may be another integration's). */
    outcome: text('outcome').notNull(),
    responseRefId: text('response_ref_id'),
    description: text('description').notNull(),
    registeredBy: text('registered_by').notNull(),
    registeredAt: timestamp('registered_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check('mpesa_pull_registrations_outcome_valid', sql`${t.outcome} in ('registered','already_registered')`),
    uniqueIndex('mpesa_pull_registrations_shortcode_uq').on(t.environment, t.shortcode),
  ],
);

export const C2B_STATUSES = ['received', 'invalid', 'unclaimed', 'applied', 'review', 'stk_twin'] as const;

/**
 * Payments the customer started from their own phone to a shop's till or paybill (Daraja C2B
 * confirmations, daraja.md §7; payments/providers/mpesa/c2b-*). One row per (merchant account,
 * TransID) whatever the duplicate deliveries (counted in `deliveries`), stored before it is
 * acknowledged. Statuses:
 * - received: stored, not yet matched (a crash in between: the next delivery, or a claim, matches it)
 * - invalid: the body could not be read as a payment (bad amount, no TransID): kept for a person, applies nothing
 * - unclaimed: in the shop's feed, waiting for a cashier to claim it for an order (till payments, unknown references)
 * - applied: a payment (payment_id) was made of it through the payment core (completed, or in review)
 * - review: it could settle a push of unknown outcome, but not provably (several fit, or the phone is not proof)
 * - stk_twin: the confirmation of an STK payment that holds its receipt: the same money, never booked twice
 * The MSISDN is never stored as a number: our keyed hash when it came plain, Safaricom's SHA-256
 * when it came hashed, its masked form when it came masked.
 */
export const c2bTransactions = pgTable(
  'c2b_transactions',
  {
    id: uuid('id').primaryKey(),
    /** merchant_accounts.id of the capability URL it came to. */
    merchantAccountId: uuid('merchant_account_id').notNull(),
    shopId: text('shop_id').notNull(),
    /** Daraja's TransID (the receipt on the customer's SMS), trimmed and upper-case; null when the body had none. */
    transId: text('trans_id'),
    transactionType: text('transaction_type'),
    /** yyyyMMddHHmmss Nairobi time, as Daraja reports it */
    transTime: text('trans_time'),
    amountMinor: bigint('amount_minor', { mode: 'bigint' }),
    currency: text('currency').notNull().default('KES'),
    businessShortcode: text('business_shortcode'),
    billRefNumber: text('bill_ref_number'),
    invoiceNumber: text('invoice_number'),
    thirdPartyTransId: text('third_party_trans_id'),
    /** plain | masked | sha256 | none | unknown: the form the MSISDN came in */
    msisdnForm: text('msisdn_form').notNull(),
    /** Our keyed hash (payments/phone-hash.ts) of a plain MSISDN. */
    phoneHash: text('phone_hash'),
    /** Safaricom's SHA-256 hex of 2547XXXXXXXX, as received (lowercase). */
    msisdnSha256: text('msisdn_sha256'),
    /** A masked MSISDN as received (e.g. 2547****123). */
    phoneMasked: text('phone_masked'),
    /** First name and the initial of the last: "John D." */
    customerName: text('customer_name'),
    status: text('status').notNull(),
    statusReason: text('status_reason'),
    /** The payment made of it (applied), or the STK payment it is the twin of. */
    paymentId: uuid('payment_id'),
    orderId: text('order_id'),
    claimedBy: text('claimed_by'),
    claimedAt: timestamp('claimed_at', { withTimezone: true }),
    deliveries: integer('deliveries').notNull().default(1),
    receivedAt: timestamp('received_at', { withTimezone: true }).notNull().defaultNow(),
    lastReceivedAt: timestamp('last_received_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check(
      'c2b_transactions_status_valid',
      sql`${t.status} in ('received','invalid','unclaimed','applied','review','stk_twin')`,
    ),
    check('c2b_transactions_amount_positive', sql`${t.amountMinor} is null or ${t.amountMinor} > 0`),
    uniqueIndex('c2b_transactions_account_trans_uq').on(t.merchantAccountId, t.transId),
    // The shop's feed of unclaimed payments, newest first (GET /payments/c2b/unclaimed).
    index('c2b_transactions_feed_idx')
      .on(t.shopId, t.receivedAt)
      .where(sql`${t.status} = 'unclaimed'`),
    index('c2b_transactions_shop_trans_idx').on(t.shopId, t.transId),
  ],
);

/**
 * What was registered with Daraja's C2B registerurl for a merchant account, and when (one row per
 * registration; the newest is in force). Production registration is one-time at Safaricom, so a
 * second one is refused unless forced. The URLs are kept without their capability tokens.
 */
export const c2bRegistrations = pgTable(
  'c2b_registrations',
  {
    id: uuid('id').primaryKey(),
    merchantAccountId: uuid('merchant_account_id').notNull(),
    shopId: text('shop_id').notNull(),
    environment: text('environment').notNull(),
    shortcode: text('shortcode').notNull(),
    /** v1 | v2 (the path must match the app's Daraja product) */
    apiVersion: text('api_version').notNull(),
    responseType: text('response_type').notNull(),
    /** Whether a validation URL was registered (Safaricom must also enable external validation on the shortcode). */
    validation: boolean('validation').notNull(),
    /** The URLs with their tokens cut off: `<base>/<accountId>/confirmation/…`. */
    confirmationUrl: text('confirmation_url').notNull(),
    validationUrl: text('validation_url'),
    /** Daraja's answer: OriginatorCoversationID, ResponseCode, ResponseDescription. */
    response: jsonb('response').notNull(),
    forced: boolean('forced').notNull().default(false),
    registeredBy: text('registered_by').notNull(),
    registeredAt: timestamp('registered_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('c2b_registrations_account_idx').on(t.merchantAccountId, t.registeredAt)],
);

export const schema = {
  orders,
  payments,
  paymentEvents,
  callbackInbox,
  idempotencyKeys,
  providerTokens,
  providerSettings,
  merchantAccounts,
  auditEvents,
  refunds,
  paymentStatusEvents,
  mpesaPullRegistrations,
  c2bTransactions,
  c2bRegistrations,
};
export type Order = typeof orders.$inferSelect;
export type Payment = typeof payments.$inferSelect;
export type NewPayment = typeof payments.$inferInsert;
export type PaymentEvent = typeof paymentEvents.$inferInsert;
export type ProviderToken = typeof providerTokens.$inferSelect;
export type MerchantAccountRow = typeof merchantAccounts.$inferSelect;
export type NewMerchantAccountRow = typeof merchantAccounts.$inferInsert;
export type Refund = typeof refunds.$inferSelect;
export type NewRefund = typeof refunds.$inferInsert;
export type PaymentStatusEventRow = typeof paymentStatusEvents.$inferSelect;
export type MpesaPullRegistration = typeof mpesaPullRegistrations.$inferSelect;

export type C2bTransactionRow = typeof c2bTransactions.$inferSelect;
export type NewC2bTransactionRow = typeof c2bTransactions.$inferInsert;
export type C2bRegistrationRow = typeof c2bRegistrations.$inferSelect;
