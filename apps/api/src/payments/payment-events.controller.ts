import {
  applyDecorators,
  Body,
  Controller,
  Get,
  HttpCode,
  Logger,
  Param,
  Post,
  Query,
  Req,
  Res,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiHeader,
  ApiOkResponse,
  ApiOperation,
  ApiProduces,
  ApiTags,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import type { AuthUser } from '../auth/auth.types';
import { JwtAuthGuard } from '../auth/jwt-auth.guard';
import { CurrentUser } from '../auth/roles.decorator';
import { ApiErrors } from '../common/api-errors.decorator';
import { ValidationFailedError } from '../common/errors';
import { safeError } from '../common/logging';
import { EventStreamQueryDto, EventTicketDto, EventTicketRequestDto } from './payment-events.dto';
import { EventStreamAuthGuard } from './payment-events.guard';
import { PaymentEventsService, type EventSink } from './payment-events.service';
import { PaymentIdParam } from './payments.dto';

const TOO_MANY_SHOP_STREAMS = {
  code: 'TOO_MANY_STREAMS',
  message:
    'Your shop already has 50 live status streams open on this server: close some screens, or check the status with GET /payments/:id',
} as const;
const TOO_MANY_STREAMS_HERE = {
  code: 'TOO_MANY_STREAMS',
  message:
    'This server has too many open live status streams: try again shortly, or check the status with GET /payments/:id',
} as const;
const SHUTTING_DOWN = { code: 'SHUTTING_DOWN', message: 'This server is restarting: reconnect in a moment' } as const;

/** What both stream routes are: the ticket-or-bearer guard, text/event-stream, Last-Event-ID, their errors. */
function EventStreamRoute(summary: string, ...extraErrors: number[]) {
  return applyDecorators(
    UseGuards(EventStreamAuthGuard),
    ApiBearerAuth(),
    ApiProduces('text/event-stream'),
    ApiHeader({ name: 'Last-Event-ID', required: false, description: 'Resume after this event id' }),
    ApiOperation({ summary, description: STREAM_DESCRIPTION }),
    ApiOkResponse({ description: STREAM_DESCRIPTION, schema: { type: 'string' } }),
    ApiErrors(
      400,
      401,
      403,
      ...extraErrors,
      { status: 429, codes: [TOO_MANY_SHOP_STREAMS] },
      { status: 503, codes: [TOO_MANY_STREAMS_HERE, SHUTTING_DOWN] },
    ),
  );
}

/** The client's reconnect delay (the stream's first line). */
const RETRY_MS = 2000;
/** A client this far behind (bytes queued to its socket) is cut off; it resumes with Last-Event-ID. */
const MAX_QUEUED_BYTES = 1 << 20;

const STREAM_DESCRIPTION =
  'text/event-stream. `retry: 2000` first; then per status change `id: <event id>`, `event: payment`, ' +
  '`data: <the payment, as GET /payments/{id}>`. A `: ping` comment every 15 s. Resume with the ' +
  'Last-Event-ID header (EventSource sends it) or ?lastEventId=: what was missed is sent first; ' +
  'delivery is at least once, de-duplicate by id. Polling GET /payments/{id} keeps working.';

/** The event's id, from the Last-Event-ID header or ?lastEventId= (the header wins: EventSource sends it on reconnect). */
function lastEventIdOf(req: Request, q: EventStreamQueryDto): number | null {
  const header = req.headers['last-event-id'];
  const raw = typeof header === 'string' && header.trim() !== '' ? header.trim() : q.lastEventId;
  if (raw === undefined) return null;
  if (!/^\d{1,15}$/.test(raw)) throw new ValidationFailedError('Last-Event-ID must be an event id (digits)');
  return Number(raw);
}

/** Writes a stream's events as text/event-stream; the headers go out with the first write. */
class SseSink implements EventSink {
  private started = false;
  closed = false;

  constructor(private readonly res: Response) {}

  start(): void {
    if (this.started) return;
    this.started = true;
    this.res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    this.res.socket?.setNoDelay(true);
    this.write(`retry: ${RETRY_MS}\n\n`);
  }

  get headersSent(): boolean {
    return this.started;
  }

  event(id: number, data: string): void {
    this.write(`id: ${id}\nevent: payment\ndata: ${data}\n\n`);
  }

  ready(lastEventId: number): void {
    this.write(`id: ${lastEventId}\nevent: ready\ndata: ${JSON.stringify({ lastEventId })}\n\n`);
  }

  end(status: string): void {
    this.write(`event: end\ndata: ${JSON.stringify({ status })}\n\n`);
    this.close();
  }

  ping(): void {
    if (this.started) this.write(': ping\n\n');
  }

  close(): void {
    if (this.closed) return;
    if (!this.started) this.start();
    this.closed = true;
    this.res.end();
  }

  private write(chunk: string): void {
    if (this.closed) return;
    if (!this.started) this.start();
    this.res.write(chunk);
    if (this.res.writableLength > MAX_QUEUED_BYTES) {
      this.closed = true;
      this.res.destroy();
    }
  }
}

/**
 * Live payment status as server-sent events (PaymentEventsService has the rules). A POS opens
 * one payment's stream after sending the prompt, or its shop's stream for the payments list.
 */
@ApiTags('payments')
@Controller('payments')
export class PaymentEventsController {
  private readonly logger = new Logger(PaymentEventsController.name);

  constructor(private readonly events: PaymentEventsService) {}

  @Post('events/ticket')
  @HttpCode(201)
  @UseGuards(JwtAuthGuard)
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'A short-lived ticket to open a live status stream from a browser EventSource (?ticket=)',
  })
  @ApiCreatedResponse({ type: EventTicketDto })
  @ApiErrors(400, 401, 403, 404)
  async ticket(@CurrentUser() user: AuthUser, @Body() body: EventTicketRequestDto): Promise<EventTicketDto> {
    const t = await this.events.ticketFor(user, body.paymentId ?? null);
    return { ticket: t.ticket, expiresAt: t.expiresAt.toISOString() };
  }

  @Get('events')
  @EventStreamRoute(
    'Live status of every payment of the shop (server-sent events; starts with `event: ready` carrying the newest event id; never ends by itself)',
  )
  async shopStream(
    @CurrentUser() user: AuthUser,
    @Query() q: EventStreamQueryDto,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    await this.stream(user, null, lastEventIdOf(req, q), req, res);
  }

  @Get(':id/events')
  @EventStreamRoute(
    'Live status of one payment (server-sent events): its current state first, every change, then `event: end` at a final status or review (a person must look)',
    404,
  )
  async paymentStream(
    @CurrentUser() user: AuthUser,
    @Param() p: PaymentIdParam,
    @Query() q: EventStreamQueryDto,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    await this.stream(user, p.id, lastEventIdOf(req, q), req, res);
  }

  private async stream(
    user: AuthUser,
    paymentId: string | null,
    lastEventId: number | null,
    req: Request,
    res: Response,
  ): Promise<void> {
    const sink = new SseSink(res);
    let gone = false;
    let handle: { close(): void } | undefined;
    res.on('close', () => {
      gone = true;
      sink.closed = true;
      handle?.close();
    });
    try {
      handle = await this.events.open(user, { paymentId, lastEventId }, sink);
    } catch (err) {
      // Before the first byte the error is an ordinary JSON answer; after it, the stream just ends (the client resumes).
      if (!sink.headersSent) throw err;
      this.logger.warn(
        { err: safeError(err) },
        'a live status stream failed while replaying; ended (the client resumes)',
      );
      sink.close();
      return;
    }
    if (gone) handle.close();
    else sink.start();
    req.socket.setTimeout(0);
  }
}
