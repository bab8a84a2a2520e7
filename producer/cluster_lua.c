/*
 * The Lua scripts a cluster node runs in Redis.  Each runs atomically,
 * so Redis is the one sequencer: <key>:seq is the last seq handed out,
 * <key>:stream holds the records under the IDs <seq>-0, <key>:values
 * the newest "<seq> <payload>" of every topic, <key>:epoch the id of
 * this Redis's data, <key>:settle a while after an epoch began, and
 * <key>:pubs each node's last PUB taken in ("<no> <seq>").
 */
#include "cluster.h"

/*
 * A batch of PUBs.  KEYS: seq stream values epoch pubs.  ARGV: trim epoch
 * node no, then topic payload pairs (PUB no, no + 1, ...).  Returns the
 * seq of the node's last PUB taken.  A PUB sent again after a broken link
 * (its no already taken) adds nothing; a batch whose first PUB's
 * predecessor is missing, or sent to a Redis whose epoch is not the
 * node's, is refused whole: order is kept or nothing goes in.
 */
const char cluster_lua_pub[] =
"if redis.call('GET', KEYS[4]) ~= ARGV[2] then\n"
"  return redis.error_reply('EPOCH the cluster epoch changed')\n"
"end\n"
"local v = redis.call('HGET', KEYS[5], ARGV[3])\n"
"local last, lseq = 0, 0\n"
"if v then\n"
"  local a, b = string.match(v, '^(%d+) (%d+)$')\n"
"  last, lseq = tonumber(a), tonumber(b)\n"
"end\n"
"local no = tonumber(ARGV[4])\n"
"if no > last + 1 then\n"
"  return redis.error_reply('ORDER a PUB before these is missing')\n"
"end\n"
"local t = redis.call('TIME')\n"
"local ms = t[1] .. string.format('%03d', math.floor(t[2] / 1000))\n"
"local vals = {}\n"
"for i = 5, #ARGV - 1, 2 do\n"
"  if no > last then\n"
"    lseq = redis.call('INCR', KEYS[1])\n"
"    local id = string.format('%d', lseq)\n"
"    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], id .. '-0',\n"
"      't', ARGV[i], 'p', ARGV[i + 1], 'ms', ms)\n"
"    vals[#vals + 1] = ARGV[i]\n"
"    vals[#vals + 1] = id .. ' ' .. ARGV[i + 1]\n"
"    last = no\n"
"  end\n"
"  no = no + 1\n"
"end\n"
"if #vals > 0 then\n"
"  redis.call('HSET', KEYS[3], unpack(vals))\n"
"  redis.call('HSET', KEYS[5], ARGV[3], string.format('%d %d', last, lseq))\n"
"end\n"
"return lseq\n";

/*
 * A node (re)joins.  KEYS: seq epoch settle pubs.  ARGV: head (the
 * node's bus) epoch (a new one, taken if Redis has none) settle_ms node
 * no (its last PUB taken, as far as it knows).  Raises the seq to the
 * node's head, so no seq it holds is handed out again, and starts an
 * epoch with a settle time if Redis had none (it was new, or lost its
 * data).  Returns { epoch, settle ms left }.
 */
const char cluster_lua_join[] =
"local epoch = redis.call('GET', KEYS[2])\n"
"if not epoch then\n"
"  epoch = ARGV[2]\n"
"  redis.call('SET', KEYS[2], epoch)\n"
"  redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])\n"
"end\n"
"local seq = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
"if seq < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end\n"
"local v = redis.call('HGET', KEYS[4], ARGV[4])\n"
"local last = 0\n"
"if v then last = tonumber(string.match(v, '^(%d+)')) end\n"
"if last < tonumber(ARGV[5]) then\n"
"  redis.call('HSET', KEYS[4], ARGV[4], ARGV[5] .. ' 0')\n"
"end\n"
"local settle = redis.call('PTTL', KEYS[3])\n"
"if settle < 0 then settle = 0 end\n"
"return { epoch, settle }\n";

/*
 * Where a node with this head reads from.  KEYS: seq stream values.
 * ARGV: head, head + 1.  Returns { 0, seq, next }: the stream holds every
 * record after head there is (next, the first of them, 0 if none: the
 * seqs below it were never handed out); or { 1, seq, 0, values } when it
 * no longer does: the node takes values (HGETALL) as of seq and reads on
 * from there.  One script, so values and seq are consistent.
 */
const char cluster_lua_catchup[] =
"local head = tonumber(ARGV[1])\n"
"local seq = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
"local function seqof(r)\n"
"  if #r == 0 then return 0 end\n"
"  return tonumber(string.match(r[1][1], '^(%d+)'))\n"
"end\n"
"local first = seqof(redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1))\n"
"local nxt = seqof(redis.call('XRANGE', KEYS[2], ARGV[2] .. '-0', '+',\n"
"  'COUNT', 1))\n"
"if seq <= head or (first ~= 0 and first <= head + 1) then\n"
"  return { 0, seq, nxt }\n"
"end\n"
"return { 1, seq, 0, redis.call('HGETALL', KEYS[3]) }\n";
