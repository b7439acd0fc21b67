import { CanActivate, Controller, ExecutionContext, Get, Inject, Injectable, Res, UseGuards } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import { NotFoundException } from '@nestjs/common';
import { AppError } from '../common/errors';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { MetricsService } from './metrics.service';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * /metrics is not public: without METRICS_TOKEN it does not exist (404); with it, only a request
 * with `Authorization: Bearer <METRICS_TOKEN>` gets it (401 otherwise). Compared in constant time.
 */
@Injectable()
export class MetricsTokenGuard implements CanActivate {
  private readonly expected: Buffer | undefined;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.expected = config.metricsToken ? digest(config.metricsToken) : undefined;
  }

  canActivate(context: ExecutionContext): boolean {
    if (!this.expected) throw new NotFoundException('Cannot GET /metrics');
    const h = context.switchToHttp().getRequest<Request>().headers.authorization;
    const m = typeof h === 'string' ? /^Bearer (\S+)$/.exec(h.trim()) : null;
    if (!m || !timingSafeEqual(digest(m[1]), this.expected))
      throw new AppError('UNAUTHORIZED', 'GET /metrics needs Authorization: Bearer <METRICS_TOKEN>', 401);
    return true;
  }
}

/** Prometheus scrape target (not in the OpenAPI document: it is for the operator's monitoring, not for POS clients). */
@ApiExcludeController()
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  @UseGuards(MetricsTokenGuard)
  async scrape(@Res() res: Response): Promise<void> {
    const body = await this.metrics.render();
    res.status(200).setHeader('Content-Type', this.metrics.contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.end(body);
  }
}
