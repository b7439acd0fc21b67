import { Body, Controller, HttpCode, Param, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiProperty, ApiResponse, ApiTags } from '@nestjs/swagger';
import { IsString } from 'class-validator';
import type { AuthUser } from '../../../auth/auth.types';
import { JwtAuthGuard } from '../../../auth/jwt-auth.guard';
import { CurrentUser, Roles } from '../../../auth/roles.decorator';
import { ApiErrors } from '../../../common/api-errors.decorator';
import { PaymentIdParam } from '../../payments.dto';
import { MpesaReceiptCheck, ReceiptCheckAnswer } from './mpesa-receipt-check';

export class MpesaReceiptDto {
  @ApiProperty({ example: 'NLJ7RT61SV', description: "The payment's M-Pesa receipt (customer's SMS, the statement)" })
  @IsString({ message: 'receipt must be a string' })
  receipt!: string;
}

class ReceiptCheckResponseDto {
  @ApiProperty() paymentId!: string;
  @ApiProperty() receipt!: string;
  @ApiProperty({ enum: ['checking'] }) status!: 'checking';
  @ApiProperty() message!: string;
}

@ApiTags('payments')
@ApiBearerAuth()
@UseGuards(JwtAuthGuard)
@Controller('payments')
export class MpesaReceiptController {
  constructor(private readonly check: MpesaReceiptCheck) {}

  @Post(':id/mpesa-receipt')
  @HttpCode(202)
  @Roles('manager', 'admin')
  @ApiOperation({
    summary: 'Settle an M-Pesa payment whose outcome is unknown by its receipt (asks M-Pesa: Transaction Status)',
    description:
      "For an `unresolved` payment or one in review with OUTCOME_UNKNOWN. M-Pesa is asked about the receipt; its answer (seconds later) completes the payment only when it shows a completed payment of its amount to the shop's shortcode, made after the push. A receipt another payment holds is refused.",
  })
  @ApiResponse({ status: 202, type: ReceiptCheckResponseDto })
  @ApiErrors(
    400,
    401,
    403,
    404,
    {
      status: 409,
      codes: [{ code: 'RECEIPT_IN_USE', message: 'This receipt already belongs to another payment' }],
    },
    422,
    502,
    503,
    504,
  )
  receipt(
    @CurrentUser() user: AuthUser,
    @Param() p: PaymentIdParam,
    @Body() body: MpesaReceiptDto,
  ): Promise<ReceiptCheckAnswer> {
    return this.check.request(user, p.id, body.receipt);
  }
}
