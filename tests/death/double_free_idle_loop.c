/* The same bug as double_free_idle_owner.c with 16-byte blocks, which travel to their owner as
 * parcels of their own (free.c): the second free rewrites the block's link while the block waits
 * in the owner's inbox, and the inbox's chain loops. The visit that purges the inbox finds the
 * loop and where it closes (free.c, _qm_inbox_chain_last): "double free", not a walk that never
 * ends. (Built with a memory tool's hooks, every block travels alone, as here, in both tests.) */
#define BLOCK_SIZE 16
#include "double_free_idle_owner.c"
