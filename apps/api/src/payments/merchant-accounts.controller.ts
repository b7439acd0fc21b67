import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Query, UseGuards } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiOkResponse,
  ApiOperation,
  ApiProperty,
  ApiPropertyOptional,
  ApiTags,
} from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, Matches, Max, Min } from 'class-validator';
import type { AuthUser } from '../auth/auth.types';
import { JwtAuthGuard } from '../auth/jwt-auth.guard';
import { CurrentUser, Roles } from '../auth/roles.decorator';
import { ApiErrors } from '../common/api-errors.decorator';
import { MERCHANT_ACCOUNT_PROVIDERS } from '../database/schema';
import { MerchantAccountsRepository } from './merchant-accounts.repository';
import { MerchantAccountsService, MerchantAccountView } from './merchant-accounts.service';

export class ShopParam {
  @ApiProperty({ example: 'shop-1' })
  @Matches(/^[A-Za-z0-9._:@-]{1,64}$/, { message: 'shopId must be a shop id (letters, digits, . _ : @ -)' })
  shopId!: string;
}

export class ShopProviderParam extends ShopParam {
  @ApiProperty({ enum: MERCHANT_ACCOUNT_PROVIDERS })
  @IsIn(MERCHANT_ACCOUNT_PROVIDERS as unknown as string[], {
    message: `provider must be one of ${MERCHANT_ACCOUNT_PROVIDERS.join(', ')}`,
  })
  provider!: string;
}

export class AuditQueryDto {
  @IsOptional()
  @Type(() => Number)
  @IsInt({ message: 'limit must be a whole number' })
  @Min(1, { message: 'limit must be between 1 and 200' })
  @Max(200, { message: 'limit must be between 1 and 200' })
  @ApiPropertyOptional({ default: 50, minimum: 1, maximum: 200 })
  limit?: number;

  @IsOptional()
  @Matches(/^[1-9]\d{0,17}$/, { message: 'before must be the id of an audit event' })
  @ApiPropertyOptional({ description: 'Page back: events older than this event id' })
  before?: string;
}

class VerificationPartDto {
  @ApiProperty() part!: string;
  @ApiProperty({ enum: ['ok', 'failed', 'not_verifiable'] }) result!: string;
  @ApiProperty() message!: string;
}

class VerificationDto {
  @ApiProperty() checkedAt!: string;
  @ApiProperty({ type: [VerificationPartDto] }) parts!: VerificationPartDto[];
}

export class MerchantAccountDto implements MerchantAccountView {
  @ApiProperty({ enum: MERCHANT_ACCOUNT_PROVIDERS }) provider!: MerchantAccountView['provider'];
  @ApiProperty({
    enum: ['own', 'chain', 'platform', 'none'],
    description:
      "own: the shop's own credentials; chain: another shop's (credentialsFromShopId); platform: the deployment's",
  })
  source!: MerchantAccountView['source'];
  @ApiPropertyOptional({ nullable: true, type: String }) accountId!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, example: 'production' }) environment!: string | null;
  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'string' },
    example: { type: 'till', shortcode: '174379', tillNumber: '5123456' },
  })
  settings!: Record<string, string>;
  @ApiProperty({
    type: [String],
    description: 'Which secrets are set (never their values)',
    example: ['consumerKey', 'consumerSecret', 'passkey'],
  })
  secretsSet!: string[];
  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'string' },
    description: 'A short keyed fingerprint of each secret, to tell which one is set',
    example: { consumerKey: '3f9a0c1d' },
  })
  fingerprints!: Record<string, string>;
  @ApiPropertyOptional({ nullable: true, type: String }) credentialsFromShopId!: string | null;
  @ApiPropertyOptional({ nullable: true, type: VerificationDto }) verification!: MerchantAccountView['verification'];
  @ApiProperty({ description: 'How many other shops (chain branches) take payments with these credentials' })
  lentToShops!: number;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'Why the account cannot be used as stored, if it cannot',
  })
  problem!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) createdAt!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) createdBy!: string | null;
}

const PUT_EXAMPLES = {
  mpesaPaybill: {
    summary: 'M-Pesa paybill',
    value: {
      environment: 'production',
      type: 'paybill',
      shortcode: '600000',
      consumerKey: '<Daraja app consumer key>',
      consumerSecret: '<Daraja app consumer secret>',
      passkey: '<64 hex characters from Safaricom>',
    },
  },
  mpesaTill: {
    summary: 'M-Pesa till under a store number',
    value: {
      environment: 'production',
      type: 'till',
      shortcode: '<store / head-office number>',
      tillNumber: '<till number>',
      consumerKey: '<consumer key>',
      consumerSecret: '<consumer secret>',
      passkey: '<passkey>',
      merchantName: "<optional: the shop's name on its M-Pesa QR codes>",
    },
  },
  mpesaBranch: {
    summary: "M-Pesa chain branch: the head office's credentials, its own till (platform operators)",
    value: {
      environment: 'production',
      type: 'till',
      tillNumber: '<till number>',
      credentialsFromShopId: '<head-office shop id>',
    },
  },
  flutterwave: {
    summary: 'Flutterwave',
    value: { environment: 'production', secretKey: '<FLWSECK-...>', secretHash: '<webhook secret hash>' },
  },
  pesapal: {
    summary: 'Pesapal',
    value: { environment: 'production', consumerKey: '<consumer key>', consumerSecret: '<consumer secret>' },
  },
};

/**
 * A shop's own provider accounts (manager/admin of that shop, or a platform operator). Secrets
 * are write-only: reads show which are set and a fingerprint. Every change is an audit event.
 */
@ApiTags('merchant accounts')
@ApiBearerAuth()
@UseGuards(JwtAuthGuard)
@Controller('shops/:shopId')
export class MerchantAccountsController {
  constructor(
    private readonly accounts: MerchantAccountsService,
    private readonly repo: MerchantAccountsRepository,
  ) {}

  @Get('merchant-accounts')
  @Roles('manager', 'admin', 'operator')
  @ApiOperation({ summary: "The shop's account with each provider (own, a chain's, the platform's, or none)" })
  @ApiOkResponse({ type: [MerchantAccountDto] })
  @ApiErrors(400, 401, 403)
  list(@CurrentUser() user: AuthUser, @Param() p: ShopParam): Promise<MerchantAccountView[]> {
    return this.accounts.list(user, p.shopId);
  }

  @Get('merchant-accounts/:provider')
  @Roles('manager', 'admin', 'operator')
  @ApiOperation({ summary: "The shop's account with one provider" })
  @ApiOkResponse({ type: MerchantAccountDto })
  @ApiErrors(400, 401, 403, 404)
  get(@CurrentUser() user: AuthUser, @Param() p: ShopProviderParam): Promise<MerchantAccountView> {
    return this.accounts.get(user, p.shopId, p.provider);
  }

  @Put('merchant-accounts/:provider')
  @Roles('manager', 'admin', 'operator')
  @ApiOperation({
    summary: "Sets (creates or replaces) the shop's account with a provider",
    description:
      'All secrets are sent every time (they are write-only). Payments already in flight keep the account they were made with. ' +
      "credentialsFromShopId (platform operators only) points a chain branch at the head office's credentials with its own till number.",
  })
  @ApiBody({ schema: { type: 'object', additionalProperties: true }, examples: PUT_EXAMPLES })
  @ApiOkResponse({ type: MerchantAccountDto })
  @ApiErrors(400, 401, 403, 404)
  put(
    @CurrentUser() user: AuthUser,
    @Param() p: ShopProviderParam,
    @Body() body: Record<string, unknown>,
  ): Promise<MerchantAccountView> {
    return this.accounts.put(user, p.shopId, p.provider, body);
  }

  @Post('merchant-accounts/:provider/verify')
  @HttpCode(200)
  @Roles('manager', 'admin', 'operator')
  @ApiOperation({
    summary:
      'Checks the account with the provider, charging no one; stores and returns what could and could not be verified',
  })
  @ApiOkResponse({ type: MerchantAccountDto })
  @ApiErrors(400, 401, 403, 404, 429, 503)
  verify(@CurrentUser() user: AuthUser, @Param() p: ShopProviderParam): Promise<MerchantAccountView> {
    return this.accounts.verify(user, p.shopId, p.provider);
  }

  @Delete('merchant-accounts/:provider')
  @Roles('manager', 'admin', 'operator')
  @ApiOperation({
    summary: "Removes the shop's own account with a provider (in-flight payments still settle with it)",
  })
  @ApiOkResponse({ type: MerchantAccountDto })
  @ApiErrors(400, 401, 403, 404, 409)
  remove(@CurrentUser() user: AuthUser, @Param() p: ShopProviderParam): Promise<MerchantAccountView> {
    return this.accounts.remove(user, p.shopId, p.provider);
  }

  @Get('audit-events')
  @Roles('manager', 'admin', 'operator')
  @ApiOperation({ summary: "Who changed the shop's payment accounts, and when (field names only, never values)" })
  @ApiOkResponse({
    description: 'Newest first',
    schema: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'actor', 'action', 'target', 'createdAt'],
        properties: {
          id: { type: 'string', description: 'Pass as `before` for the next page', example: '42' },
          actor: { type: 'string', example: 'user:manager-1 (manager)' },
          action: { type: 'string', example: 'merchant_account.verified' },
          target: { type: 'string', example: 'merchant_account:5f0c2a8e-3b1d-4c7a-9e2f-1a6b8d4c0e93' },
          data: { type: 'object', nullable: true, additionalProperties: true },
          createdAt: { type: 'string', format: 'date-time' },
        },
      },
    },
  })
  @ApiErrors(400, 401, 403)
  async audit(@CurrentUser() user: AuthUser, @Param() p: ShopParam, @Query() q: AuditQueryDto) {
    this.accounts.authorize(user, p.shopId);
    const rows = await this.repo.listAudit(p.shopId, q.limit ?? 50, q.before ? BigInt(q.before) : undefined);
    return rows.map((r) => ({
      id: String(r.id),
      actor: r.actor,
      action: r.action,
      target: r.target,
      data: r.data,
      createdAt: r.createdAt.toISOString(),
    }));
  }
}
