/**
 * The device the suite trains on: 'cpu' unless TORCHTS_TEST_DEVICE says otherwise
 * (scripts/gpu-check.sh runs the whole suite with 'cuda' on the GPU machine).
 */
export const TEST_DEVICE = process.env.TORCHTS_TEST_DEVICE ?? 'cpu';
