import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { DB_HANDLE } from '../database/database.module';
import type { DatabaseHandle } from '../database/database';
import { ReadinessService } from './readiness.service';

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    @Inject(DB_HANDLE) private readonly db: DatabaseHandle,
    private readonly readiness: ReadinessService,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Liveness and database check' })
  @ApiOkResponse({ schema: { example: { status: 'ok', database: 'up', databaseKind: 'postgres', uptimeSeconds: 12 } } })
  @ApiResponse({
    status: 503,
    description: 'Database unreachable',
    schema: { example: { status: 'error', database: 'down', databaseKind: 'postgres', uptimeSeconds: 12 } },
  })
  async check(@Res({ passthrough: true }) res: Response) {
    let up = true;
    try {
      await Promise.race([
        this.db.ping(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 2000).unref()),
      ]);
    } catch {
      up = false;
    }
    res.status(up ? 200 : 503);
    return {
      status: up ? 'ok' : 'error',
      database: up ? 'up' : 'down',
      databaseKind: this.db.kind,
      uptimeSeconds: Math.round(process.uptime()),
    };
  }

  @Get('live')
  @ApiOperation({
    summary: 'Liveness: the process serves requests (no dependency is checked: restart it only when this fails)',
  })
  @ApiOkResponse({ schema: { example: { status: 'ok', uptimeSeconds: 12 } } })
  live() {
    return { status: 'ok', uptimeSeconds: Math.round(process.uptime()) };
  }

  @Get('ready')
  @ApiOperation({
    summary:
      'Readiness: the database answers, every migration of this build is applied, the instance is not draining. 503 otherwise (send no traffic)',
  })
  @ApiOkResponse({
    schema: { example: { status: 'ready', database: 'up', pendingMigrations: 0, draining: false } },
  })
  @ApiResponse({
    status: 503,
    description: 'Not ready: the database is down, a migration is missing, or the instance is shutting down',
    schema: { example: { status: 'unavailable', database: 'up', pendingMigrations: 0, draining: true } },
  })
  async ready(@Res({ passthrough: true }) res: Response) {
    const r = await this.readiness.check();
    res.status(r.ready ? 200 : 503);
    return {
      status: r.ready ? 'ready' : 'unavailable',
      database: r.database,
      pendingMigrations: r.pendingMigrations,
      draining: r.draining,
    };
  }
}
