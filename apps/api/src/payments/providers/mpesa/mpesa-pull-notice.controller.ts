import { Body, Controller, HttpCode, Inject, Param, Post, Req } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { ApiErrors } from '../../../common/api-errors.decorator';
import { AppError } from '../../../common/errors';
import { ipAllowed } from '../../../common/ip-allowlist';
import type { AppConfig } from '../../../config/app-config';
import { APP_CONFIG } from '../../../config/config.module';
import { CallbackAckDto } from '../../payments.dto';
import { MpesaPullService } from './mpesa-pull.service';

type RawRequest = Request & { rawBody?: Buffer };

/** The CallBackURL given at Pull Transactions registration: `/payments/callback/pull/<shortcode>/<token>`. */
@ApiTags('payments')
@Controller('payments/callback')
export class MpesaPullNoticeController {
  constructor(
    private readonly pull: MpesaPullService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Post('pull/:shortcode/:token')
  @HttpCode(200)
  @ApiOperation({
    summary: "Daraja's Pull Transactions notice (the registration's capability URL)",
    description:
      'What Daraja sends here is undocumented: it is stored before the reply and never acted on (Pull Transactions are read by query).',
  })
  @ApiOkResponse({ type: CallbackAckDto })
  @ApiErrors(400, 403, 413)
  notice(
    @Param('shortcode') shortcode: string,
    @Param('token') token: string,
    @Body() _body: unknown,
    @Req() req: RawRequest,
  ): Promise<{ ResultCode: 0; ResultDesc: 'Accepted' }> {
    if (!ipAllowed(req.ip, this.config.mpesa.callbackIpAllowlist))
      throw new AppError('FORBIDDEN', 'Callback sender is not on the allowlist', 403);
    return this.pull.receiveNotice({
      shortcode,
      token,
      rawBody: req.rawBody?.toString('utf8') ?? '',
      sourceIp: req.ip,
    });
  }
}
