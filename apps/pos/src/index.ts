export { bundlePos, configScript, startPosServer, type PosServer, type PosServerOptions } from './server';
