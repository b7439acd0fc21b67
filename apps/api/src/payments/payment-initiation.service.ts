import { Injectable, Logger } from '@nestjs/common';
import { AppError, DatabaseUnavailableError } from '../common/errors';
import { safeError, safeMessage } from '../common/logging';
import { describeDatabaseError, isDatabaseUnavailable, Tx } from '../database/database';
import type { HttpResult } from './payment-lifecycle.service';
import type { PaymentStatus } from './payment-status';
import { PaymentsRepository } from './payments.repository';
import type { ProviderName } from './providers/payment-provider';
import { paymentInitiations } from '../metrics/metrics';
import { ProviderError } from './providers/provider-errors';

/** Database-retry delays (ms) while recording a provider's answer: a bounded ~8 s, then a 503. */
const WRITE_RETRY_DELAYS_MS = [250, 500, 1000, 2000, 4000];

/** One provider call that starts a payment (the payment row is already 'initiated'), and what is provider-specific about recording it. */
export interface InitiationCall<R> {
  paymentId: string;
  provider: ProviderName;
  /** 'M-Pesa', 'Flutterwave', 'Pesapal': in messages and logs */
  label: string;
  /** audit actor of the call's event ('daraja:stk-push', 'flutterwave:init', 'pesapal:submit-order') */
  actor: string;
  /** The Idempotency-Key this request holds: its answer is stored with the provider's. */
  idem?: { shopId: string; key: string };
  /** The provider call, once: never retried here (an unknown outcome leaves the payment 'unresolved'). */
  send(): Promise<R>;
  /**
   * Records what the provider accepted (the payment's update and its provider_response event) in
   * `tx`; returns our answer. The key's answer is written after it in the same transaction.
   * Required unless the call has recordAnswerAlone.
   */
  recordAnswer?(answer: R, tx: Tx, ms: number): Promise<HttpResult>;
  /**
   * Instead of recordAnswer: records what the provider accepted, its event AND the
   * Idempotency-Key's answer (`idem`) in one statement of its own, atomic without a transaction
   * (M-Pesa's push: one commit instead of BEGIN, three statements, COMMIT). Retried like the
   * transaction (the same statement again).
   */
  recordAnswerAlone?(answer: R, ms: number, idem: { shopId: string; key: string } | undefined): Promise<HttpResult>;
  /** statusReason of a payment whose call ended in an unexpected error (neither the provider's nor our refusal). */
  unknownReason: string;
  texts: {
    /** appended to a provider error whose outcome is unknown: "<message>. <unknownOutcome>" */
    unknownOutcome: string;
    /** the message of the 502 after an unexpected error (the payment is 'unresolved') */
    unexpected: string;
    /** in the 503 when the answer could not be recorded: "<doNotRepeat>: check this payment's status in a minute." */
    doNotRepeat: string;
  };
  /** The provider's own fields of the provider_error event (under the names each provider has always written). */
  errorEventData(err: ProviderError | undefined): Record<string, unknown>;
  /** result_code of a payment the provider refused; default its own error code. */
  resultCode?(err: ProviderError): string | null;
}

/**
 * The one path every provider's payment init takes after the 'initiated' row is written
 * (PaymentLifecycle.openPayment): the provider is called once, then in ONE transaction
 *
 * - accepted: the provider's answer (recordAnswer), its event and the Idempotency-Key's answer;
 * - a ProviderError (or our own 4xx refusal before anything was sent): initiated → failed when
 *   the provider provably did not act on it, else → unresolved (outcome unknown: never retried,
 *   the reconciler / a late notification settles it); the provider_error event; the error
 *   answer, also stored as the key's answer;
 * - an unexpected error: initiated → unresolved and the event, but the key stays UNANSWERED and
 *   a 502 is thrown: a replay answers "in progress" until no request can still hold the key,
 *   then returns the payment itself (PaymentLifecycle.replayIdempotent), which says what really
 *   happened — never a stored error that was only ours.
 *
 * The write is retried while the database is away for a moment (see write).
 */
@Injectable()
export class PaymentInitiation {
  private readonly logger = new Logger(PaymentInitiation.name);

  constructor(private readonly repo: PaymentsRepository) {}

  async run<R>(call: InitiationCall<R>): Promise<HttpResult> {
    try {
      const result = await this.runOnce(call);
      const body = result.body as { status?: unknown; code?: unknown } | undefined;
      const outcome = result.status < 300 ? body?.status : body?.code;
      paymentInitiations.inc({
        provider: call.provider,
        outcome: typeof outcome === 'string' ? outcome : String(result.status),
      });
      return result;
    } catch (err) {
      paymentInitiations.inc({
        provider: call.provider,
        outcome: err instanceof AppError ? err.code : 'INTERNAL_ERROR',
      });
      throw err;
    }
  }

  private async runOnce<R>(call: InitiationCall<R>): Promise<HttpResult> {
    const started = Date.now();
    let answer: R;
    try {
      answer = await call.send();
    } catch (err) {
      return this.recordFailure(call, err, Date.now() - started);
    }
    const ms = Date.now() - started;
    const { recordAnswerAlone: alone, recordAnswer: inTx } = call;
    if (alone) return this.retried(call, () => alone(answer, ms, call.idem));
    if (!inTx) throw new Error(`${call.label}: an initiation call needs recordAnswer or recordAnswerAlone`);
    return this.write(call, async (tx) => this.withKeyAnswer(call, tx, await inTx(answer, tx, ms)));
  }

  private async withKeyAnswer(call: InitiationCall<unknown>, tx: Tx, result: HttpResult): Promise<HttpResult> {
    if (call.idem)
      await this.repo.storeIdempotentResponse(call.idem.shopId, call.idem.key, result.status, result.body, tx);
    return result;
  }

  private async recordFailure(call: InitiationCall<unknown>, err: unknown, ms: number): Promise<HttpResult> {
    const { paymentId } = call;
    const provider = err instanceof ProviderError ? err : undefined;
    // Ours (e.g. the adapter's last checks): refused before anything was sent.
    const refused = !provider && err instanceof AppError && err.statusCode < 500 ? err : undefined;
    const known = provider ?? refused;
    const to: PaymentStatus = refused || provider?.outcome === 'not_processed' ? 'failed' : 'unresolved';
    const reason = known ? known.code : call.unknownReason;
    const written = await this.write(call, async (tx): Promise<{ answer?: HttpResult; status?: string }> => {
      const moved = await this.repo.transitionIf(
        paymentId,
        'initiated',
        {
          status: to,
          statusReason: reason,
          resultCode: provider ? (call.resultCode ? call.resultCode(provider) : (provider.providerCode ?? null)) : null,
          resultDesc: known ? (provider?.providerMessage ?? known.message).slice(0, 500) : null,
        },
        tx,
      );
      await this.repo.insertEvent(
        {
          paymentId,
          type: 'provider_error',
          fromStatus: 'initiated',
          toStatus: moved ? to : null,
          actor: call.actor,
          data: { code: reason, message: safeMessage(err), ...call.errorEventData(provider), ms },
        },
        tx,
      );
      // If a notification or the reconciler overtook the late answer, report the payment's real status.
      const status = moved ? to : (await this.repo.findById(paymentId, tx))?.status;
      if (!known) return { status };
      const message = to === 'unresolved' ? `${known.message}. ${call.texts.unknownOutcome}` : known.message;
      const answer: HttpResult = {
        status: known.statusCode,
        body: {
          statusCode: known.statusCode,
          code: known.code,
          message,
          details: { ...(known.details ?? {}), paymentId, status },
        },
        headers: known.headers,
      };
      return { answer: await this.withKeyAnswer(call, tx, answer) };
    });
    if (written.answer) return written.answer;
    this.logger.error(
      { err: safeError(err), paymentId, provider: call.provider },
      `unexpected error while calling ${call.label}; payment left unresolved, its Idempotency-Key unanswered`,
    );
    throw new AppError('PROVIDER_UNAVAILABLE', call.texts.unexpected, 502, {
      provider: call.provider,
      paymentId,
      status: written.status,
    });
  }

  /**
   * The provider has answered (the customer may have the prompt or the page): what it said must
   * reach the database, or the payment is left without its provider ids and can never be asked
   * about. A database that is away for a moment (failover, dropped connections) is waited for, a
   * bounded ~8 s; each attempt is the whole transaction again (ids are only filled in, the status
   * only moves from 'initiated'). If it is still away, the cashier gets a 503 that names the
   * payment and says not to start it again.
   */
  private write<T>(call: InitiationCall<unknown>, write: (tx: Tx) => Promise<T>): Promise<T> {
    return this.retried(call, () => this.repo.transaction(write));
  }

  /** write's retries around any write (a transaction, or one statement that is atomic alone). */
  private async retried<T>(call: InitiationCall<unknown>, attemptWrite: () => Promise<T>): Promise<T> {
    const { paymentId, label } = call;
    for (let attempt = 0; ; attempt++) {
      try {
        return await attemptWrite();
      } catch (err) {
        if (!isDatabaseUnavailable(err)) throw err;
        const delayMs = WRITE_RETRY_DELAYS_MS[attempt];
        if (delayMs === undefined) {
          this.logger.error(
            { paymentId, db: describeDatabaseError(err) },
            `database unavailable while recording ${label}'s answer; the payment stays open for the reconciler`,
          );
          throw new DatabaseUnavailableError(
            `The ${label} request was sent but could not be recorded (the database is unavailable). ${call.texts.doNotRepeat}: check this payment's status in a minute.`,
            { paymentId },
          );
        }
        this.logger.warn(
          { paymentId, db: describeDatabaseError(err), retryInMs: delayMs },
          `database unavailable while recording ${label}'s answer; retrying`,
        );
        await new Promise((r) => setTimeout(r, delayMs));
      }
    }
  }
}
