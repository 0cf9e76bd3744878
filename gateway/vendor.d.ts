// aedes-persistence-redis 11 ships no type declarations; gateway/cluster.ts uses only its factory.
declare module 'aedes-persistence-redis' {
  function createRedisPersistence(opts?: Record<string, unknown>): unknown;
  export default createRedisPersistence;
}
