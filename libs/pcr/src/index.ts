export * from './measure';
export * from './policy';
export * from './pcrsig';
