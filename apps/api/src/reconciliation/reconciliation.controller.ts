import { Controller, HttpCode, Inject, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { IsIn, IsOptional, Matches } from 'class-validator';
import type { Request, Response } from 'express';
import type { AuthUser } from '../auth/auth.types';
import { JwtAuthGuard } from '../auth/jwt-auth.guard';
import { CurrentUser, Roles } from '../auth/roles.decorator';
import { ApiErrors } from '../common/api-errors.decorator';
import { AppError } from '../common/errors';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { MerchantAccountsService } from '../payments/merchant-accounts.service';
import { MerchantAccountRequiredError } from '../payments/merchant-accounts.types';
import { StatementMatchingService, StatementReport, StatementScope } from './statement-matching.service';

/** Largest statement accepted over HTTP (≈ 700k rows of a Safaricom export). */
export const STATEMENT_MAX_BYTES = 50 * 1024 * 1024;
export const STATEMENT_PATH = '/reconciliation/statements';

export class StatementQueryDto {
  @IsOptional()
  @IsIn(['statement', 'all'], { message: 'window must be statement or all' })
  window?: 'statement' | 'all';

  @IsOptional()
  @Matches(/^\d{5,7}$/, { message: 'shortcode must be the 5 to 7 digit paybill or store number the statement is for' })
  shortcode?: string;
}

@ApiTags('reconciliation')
@ApiBearerAuth()
@UseGuards(JwtAuthGuard)
@Controller('reconciliation')
export class ReconciliationController {
  constructor(
    private readonly matching: StatementMatchingService,
    private readonly accounts: MerchantAccountsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Post('statements')
  @HttpCode(200)
  @Roles('manager', 'admin')
  @ApiOperation({
    summary: "Match an M-Pesa statement export (CSV) against the shop's payments",
    description:
      'Send the CSV as the raw body with `Content-Type: text/csv` (up to 50 MB). Columns (header row, any order, case-insensitive): ' +
      '`Receipt No.`/receipt, `Paid In`/amount, optional `Completion Time`/completion_time, `Details`/phone, `Transaction Status`/status. ' +
      'Only Completed rows with money paid in are matched. Lists hold the first 1,000 items; counts are complete. ' +
      'Nothing is changed, except this: a row whose receipt is new to us settles an M-Pesa payment whose outcome Daraja cannot tell (in review with OUTCOME_UNKNOWN, or open without a CheckoutRequestID) when its amount, ' +
      'phone (a full number in Details, compared by its keyed hash) and completion time (2 minutes before to 10 minutes after the push) fit exactly that one payment and no other row fits it (`settledFromStatement`; ' +
      'a success that no longer fits its order goes to review, EXCEEDS_OUTSTANDING). A payment that took money without a receipt (completed, or in review for a refund, after an STK query) counts as a fit too: ' +
      "a row that could be its money never settles another payment, and when it is the only fit it gets the row's receipt, nothing else (`receiptsRecorded`). " +
      'Rows that fit less surely (masked phone, more than one fit, an open payment Daraja can still answer for: `payment_still_open`) are listed in `possibleMatches` for a person and change nothing.',
  })
  @ApiConsumes('text/csv')
  @ApiBody({
    schema: {
      type: 'string',
      example:
        'Receipt No.,Completion Time,Details,Transaction Status,Paid In\nNLJ7RT61SV,2026-11-01 10:21:15,"Pay Bill from 2547******49 - J D",Completed,"1,250.00"\n',
    },
  })
  @ApiQuery({
    name: 'window',
    required: false,
    enum: ['statement', 'all'],
    description: "missingFromStatement within the statement's time span (default) or over all time",
  })
  @ApiQuery({
    name: 'shortcode',
    required: false,
    description:
      "The paybill / store number the statement is for (default: the shop's M-Pesa account's). Only payments made with an account of that shortcode are matched against it",
  })
  @ApiOkResponse({ description: 'The matching report', schema: { type: 'object' } })
  @ApiErrors(400, 401, 403, 413)
  async upload(
    @CurrentUser() user: AuthUser,
    @Query() q: StatementQueryDto,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<StatementReport> {
    if (!req.is('text/csv'))
      throw new AppError(
        'UNSUPPORTED_MEDIA_TYPE',
        'Send the statement as the raw body with Content-Type: text/csv',
        415,
      );
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > STATEMENT_MAX_BYTES) {
      res.setHeader('Connection', 'close');
      throw tooLarge();
    }
    const scope = await this.scopeFor(user.shopId, q.shortcode);
    try {
      return await this.matching.match(user.shopId, limitBytes(req, STATEMENT_MAX_BYTES), {
        scope,
        window: q.window,
        actor: `user:${user.sub}`,
      });
    } catch (err) {
      // The rest of the body is not read: do not keep the connection for it.
      res.setHeader('Connection', 'close');
      throw err;
    }
  }

  /** A statement belongs to one shortcode: the one asked for, or the shop's account's. */
  private async scopeFor(shopId: string, shortcode: string | undefined): Promise<StatementScope> {
    let code = shortcode;
    if (!code) {
      try {
        code = (await this.accounts.resolveForPayment(shopId, 'mpesa')).settings.shortcode;
      } catch (err) {
        if (!(err instanceof MerchantAccountRequiredError)) throw err;
        throw new AppError(
          'VALIDATION_FAILED',
          'This shop has no M-Pesa account: say which shortcode the statement is for (?shortcode=)',
          400,
          { field: 'shortcode' },
        );
      }
    }
    return { shortcode: code, includePlatform: code === this.config.mpesa.shortcode };
  }
}

function tooLarge(): AppError {
  return new AppError(
    'PAYLOAD_TOO_LARGE',
    `The statement is larger than ${STATEMENT_MAX_BYTES / 1024 / 1024} MB: split it by date`,
    413,
  );
}

/** The request body, chunk by chunk (backpressure: the next chunk is read when matching asks for it), capped. */
async function* limitBytes(req: Request, max: number): AsyncGenerator<Buffer> {
  let total = 0;
  // destroyOnReturn false: stopping early (413, bad header) must still let us answer on this socket.
  for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > max) throw tooLarge();
    yield chunk;
  }
}
