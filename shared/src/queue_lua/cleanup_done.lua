-- Deletes what apalis-redis keeps of finished tasks: their payload (data hash field), result,
-- metadata hash and membership of the done set. Our jobs table holds the real record, so none
-- of it is needed once a task is done (apalis-redis#10: these grow without bound otherwise).
-- KEYS[1]: the done set   KEYS[2]: the data hash
-- ARGV[1]: the metadata key prefix   ARGV[2]: at most this many tasks per call
local ids = redis.call('SRANDMEMBER', KEYS[1], tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', ARGV[1] .. ':result', id)
  redis.call('DEL', ARGV[1] .. ':' .. id)
  redis.call('SREM', KEYS[1], id)
end
return #ids
