import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { DB_HANDLE } from '../database/database.module';
import type { DatabaseHandle } from '../database/database';

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(@Inject(DB_HANDLE) private readonly db: DatabaseHandle) {}

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
}
