import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, IsUUID, Matches, MaxLength } from 'class-validator';

export class EventTicketRequestDto {
  @ApiPropertyOptional({
    format: 'uuid',
    description: "Only this payment's stream (GET /payments/{id}/events); without it, any stream of the shop",
  })
  @IsOptional()
  @IsUUID('all', { message: 'paymentId must be a payment id (UUID)' })
  paymentId?: string;
}

export class EventTicketDto {
  @ApiProperty({
    description:
      'Pass as ?ticket= to open a live status stream with EventSource (which cannot send an Authorization header). Good for opening streams until expiresAt.',
  })
  ticket!: string;
  @ApiProperty({ format: 'date-time' }) expiresAt!: string;
}

export class EventStreamQueryDto {
  @ApiPropertyOptional({
    description: 'A ticket from POST /payments/events/ticket, instead of the Authorization header (EventSource)',
  })
  @IsOptional()
  @IsString({ message: 'ticket must be a string' })
  @MaxLength(1000, { message: 'ticket is too long' })
  ticket?: string;

  @ApiPropertyOptional({
    example: '1042',
    description:
      'Resume after this event id (as the Last-Event-ID header EventSource sends on reconnect): what was missed is sent first',
  })
  @IsOptional()
  @IsString({ message: 'lastEventId must be an event id' })
  @Matches(/^\d{1,15}$/, { message: 'lastEventId must be an event id (digits)' })
  lastEventId?: string;
}
