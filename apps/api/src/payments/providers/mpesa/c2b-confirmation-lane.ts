import { Inject, Injectable } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { AppError } from '../../../common/errors';
import { FastLane, LaneAnswer, LaneRequest, plainJsonBody } from '../../../common/fast-lane';
import { ipAllowed } from '../../../common/ip-allowlist';
import type { AppConfig } from '../../../config/app-config';
import { APP_CONFIG } from '../../../config/config.module';
import { C2bIngestService } from './c2b-ingest.service';

/**
 * /payments/c2b/<accountId>/confirmation/<token>: exactly these plain segments (anything
 * percent-encoded, a query string or odd is Express's to decode and refuse).
 */
const C2B_CONFIRMATION_PATH = /^\/payments\/c2b\/([A-Za-z0-9_-]{1,128})\/confirmation\/([A-Za-z0-9_-]{1,128})$/;

/**
 * Daraja's C2B confirmations on their capability URLs, served in front of Express
 * (common/fast-lane), as StkCallbackLane serves STK callbacks: the same allowlist check and the
 * same C2bIngestService.confirm that C2bNotificationsController.confirmation calls, without
 * Express, Nest's pipeline and pino-http around them (bench/README.md §8). A request this lane
 * declines (another content type, a chunked or compressed body, a query string) goes to the
 * controller, which does the same.
 */
@Injectable()
export class C2bConfirmationLane implements FastLane {
  readonly route = '/payments/c2b/:accountId/confirmation/:token';

  constructor(
    private readonly ingest: C2bIngestService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  accepts(req: IncomingMessage): boolean {
    return req.method === 'POST' && req.url !== undefined && C2B_CONFIRMATION_PATH.test(req.url) && plainJsonBody(req);
  }

  async serve({ req, ip, body }: LaneRequest): Promise<LaneAnswer> {
    const [, accountId, token] = C2B_CONFIRMATION_PATH.exec(req.url!)!;
    if (!ipAllowed(ip, this.config.mpesa.callbackIpAllowlist))
      throw new AppError('FORBIDDEN', 'Callback sender is not on the allowlist', 403);
    return { body: await this.ingest.confirm(accountId, token, body) };
  }
}
