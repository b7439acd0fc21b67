import { Injectable } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { FastLane, LaneAnswer, LaneRequest, plainJsonBody } from '../common/fast-lane';
import { PaymentsService } from './payments.service';

/**
 * /payments/callback/<paymentId>/<token>: exactly two plain segments (the result URLs have more;
 * anything percent-encoded or odd is Express's to decode and refuse).
 */
const STK_CALLBACK_PATH = /^\/payments\/callback\/([A-Za-z0-9_-]{1,128})\/([A-Za-z0-9_-]{1,128})$/;

/**
 * Daraja's STK callbacks on their capability URL, served in front of Express (common/fast-lane):
 * the same PaymentsService.receiveCallback the controller calls, without Express, Nest's pipeline
 * and pino-http around it, which cost several times the one write the callback needs before it
 * is acknowledged (bench/README.md §1). A request this lane declines (another content type, a
 * chunked or compressed body, a query string) goes to PaymentsController, which does the same.
 */
@Injectable()
export class StkCallbackLane implements FastLane {
  readonly route = '/payments/callback/:paymentId/:token';

  constructor(private readonly payments: PaymentsService) {}

  accepts(req: IncomingMessage): boolean {
    return req.method === 'POST' && req.url !== undefined && STK_CALLBACK_PATH.test(req.url) && plainJsonBody(req);
  }

  async serve({ req, ip, body, rawBody }: LaneRequest): Promise<LaneAnswer> {
    const [, paymentId, token] = STK_CALLBACK_PATH.exec(req.url!)!;
    const ack = await this.payments.receiveCallback({
      paymentId,
      token,
      body,
      rawBody: rawBody.toString('utf8'),
      sourceIp: ip,
    });
    return { body: ack };
  }
}
