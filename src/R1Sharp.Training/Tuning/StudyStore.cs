using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;

namespace R1Sharp.Training.Tuning;

/// What a study is: fixed when it is created, checked when it is resumed.
public sealed record StudyDefinition(string Kind, string ConfigSha256, string Space, string Metric, string Direction, string Sampler, string Pruner, int Seed)
{
    public double Sign => Direction == "maximize" ? -1 : 1;
}

/// One study in one SQLite file: trials, their parameters, intermediate values and states. Every
/// change is one transaction (BEGIN IMMEDIATE, WAL journal), so worker processes can share the
/// file; a worker killed mid-trial leaves its trial RUNNING with a stale heartbeat, and the next
/// worker to claim a trial marks it failed and queues a retry with the same parameters.
public sealed class StudyStore : IDisposable
{
    public const string FileName = "study.db";
    /// A running trial whose worker has not written for this long is taken as lost, even if its process exists.
    public static readonly TimeSpan StaleAfter = TimeSpan.FromMinutes(2);

    private readonly SqliteConnection _db;

    private StudyStore(SqliteConnection db, string path) => (_db, Path) = (db, path);

    public string Path { get; }

    public static StudyStore Open(string dir)
    {
        Directory.CreateDirectory(dir);
        var path = System.IO.Path.Combine(dir, FileName);
        if (File.Exists(path) && new FileInfo(path).Length > 0 && !LooksLikeSqlite(path))
            throw new R1SharpException($"{path}: not a SQLite study file");
        var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, DefaultTimeout = 60 }.ToString());
        try
        {
            db.Open();
            Execute(db, "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=60000; PRAGMA synchronous=NORMAL;");
            Execute(db, """
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS trials (number INTEGER PRIMARY KEY, state TEXT NOT NULL, params TEXT NOT NULL,
                    value REAL, retry_of INTEGER, worker TEXT, heartbeat REAL, started REAL, finished REAL, message TEXT);
                CREATE TABLE IF NOT EXISTS intermediate (number INTEGER NOT NULL, step INTEGER NOT NULL, value REAL NOT NULL,
                    PRIMARY KEY (number, step));
                """);
        }
        catch (SqliteException e)
        {
            db.Dispose();
            throw new R1SharpException($"{path}: cannot open the study ({e.Message})");
        }
        return new StudyStore(db, path);
    }

    private static bool LooksLikeSqlite(string path)
    {
        using var f = File.OpenRead(path);
        var header = new byte[16];
        return f.Read(header) == 16 && System.Text.Encoding.ASCII.GetString(header) == "SQLite format 3\0";
    }

    /// Creates the study, or checks that a resumed one is the same study (config, space, objective).
    /// A new study queues `first` (the config's own values) as trial 0, so the search is measured against it.
    public void Define(StudyDefinition definition, IReadOnlyDictionary<string, JsonNode?>? first = null)
    {
        using var tx = _db.BeginTransaction();
        var stored = Meta(tx);
        var wanted = new Dictionary<string, string>
        {
            ["kind"] = definition.Kind, ["config_sha256"] = definition.ConfigSha256, ["space"] = definition.Space, ["metric"] = definition.Metric,
            ["direction"] = definition.Direction, ["sampler"] = definition.Sampler, ["pruner"] = definition.Pruner, ["seed"] = definition.Seed.ToString(CultureInfo.InvariantCulture),
        };
        if (stored.Count == 0)
        {
            foreach (var (key, value) in wanted) Command(tx, "INSERT INTO meta (key, value) VALUES ($k, $v)", ("$k", key), ("$v", value)).ExecuteNonQuery();
            if (first is not null)
                Command(tx, "INSERT INTO trials (number, state, params, message) VALUES (0, 'WAITING', $p, 'the config as given')", ("$p", ToJson(first))).ExecuteNonQuery();
        }
        else
        {
            foreach (var (key, value) in wanted)
                if (!stored.TryGetValue(key, out var was) || was != value)
                    throw new R1SharpException($"{Path}: this study was created with another {key.Replace('_', ' ')} ({Shorten(was)} , now {Shorten(value)}); use a new --study folder");
        }
        tx.Commit();
    }

    private static string Shorten(string? s) => s is null ? "none" : s.Length > 60 ? s[..60] + "…" : s;

    private Dictionary<string, string> Meta(SqliteTransaction? tx = null)
    {
        var meta = new Dictionary<string, string>();
        using var reader = Command(tx, "SELECT key, value FROM meta").ExecuteReader();
        while (reader.Read()) meta[reader.GetString(0)] = reader.GetString(1);
        return meta;
    }

    public List<TrialRecord> Trials() => Trials(null);

    private List<TrialRecord> Trials(SqliteTransaction? tx)
    {
        var intermediate = new Dictionary<int, Dictionary<int, double>>();
        using (var reader = Command(tx, "SELECT number, step, value FROM intermediate").ExecuteReader())
            while (reader.Read())
            {
                var n = reader.GetInt32(0);
                if (!intermediate.TryGetValue(n, out var d)) intermediate[n] = d = [];
                d[reader.GetInt32(1)] = reader.GetDouble(2);
            }
        var trials = new List<TrialRecord>();
        using (var reader = Command(tx, "SELECT number, state, params, value FROM trials ORDER BY number").ExecuteReader())
            while (reader.Read())
            {
                var n = reader.GetInt32(0);
                var values = (JsonNode.Parse(reader.GetString(2)) as JsonObject ?? throw new R1SharpException($"{Path}: trial {n} has damaged parameters"))
                    .ToDictionary(kv => kv.Key, kv => kv.Value?.DeepClone());
                if (!Enum.TryParse<TrialState>(reader.GetString(1), ignoreCase: true, out var state)) throw new R1SharpException($"{Path}: trial {n} has an unknown state '{reader.GetString(1)}'");
                trials.Add(new TrialRecord(n, state, values,
                    reader.IsDBNull(3) ? null : reader.GetDouble(3), intermediate.GetValueOrDefault(n) ?? []));
            }
        return trials;
    }

    /// Details of each trial for reports: number → (retry_of, started, finished, message).
    public Dictionary<int, (int? RetryOf, double? Started, double? Finished, string? Message)> Details()
    {
        var details = new Dictionary<int, (int?, double?, double?, string?)>();
        using var reader = Command(null, "SELECT number, retry_of, started, finished, message FROM trials").ExecuteReader();
        while (reader.Read())
            details[reader.GetInt32(0)] = (reader.IsDBNull(1) ? null : reader.GetInt32(1), reader.IsDBNull(2) ? null : reader.GetDouble(2),
                reader.IsDBNull(3) ? null : reader.GetDouble(3), reader.IsDBNull(4) ? null : reader.GetString(4));
        return details;
    }

    /// The next trial for `worker`: a queued retry first, else new parameters from `sample` while the
    /// study has fewer than `target` finished-or-running trials; null when there is nothing left to run.
    public (int Number, Dictionary<string, JsonNode?> Params)? Claim(string worker, int target, Func<IReadOnlyList<TrialRecord>, int, Dictionary<string, JsonNode?>> sample)
    {
        using var tx = _db.BeginTransaction();
        RecoverLost(tx);
        var now = Now();
        var waiting = Command(tx, "SELECT number, params FROM trials WHERE state = 'WAITING' ORDER BY number LIMIT 1");
        using (var reader = waiting.ExecuteReader())
        {
            if (reader.Read())
            {
                var number = reader.GetInt32(0);
                var values = (JsonNode.Parse(reader.GetString(1)) as JsonObject)!.ToDictionary(kv => kv.Key, kv => kv.Value?.DeepClone());
                reader.Close();
                Command(tx, "UPDATE trials SET state = 'RUNNING', worker = $w, heartbeat = $t, started = $t WHERE number = $n",
                    ("$w", worker), ("$t", now), ("$n", number)).ExecuteNonQuery();
                tx.Commit();
                return (number, values);
            }
        }
        var busy = Convert.ToInt32(Command(tx, "SELECT COUNT(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED', 'RUNNING')").ExecuteScalar());
        if (busy >= target) return null;
        var next = Convert.ToInt32(Command(tx, "SELECT COALESCE(MAX(number) + 1, 0) FROM trials").ExecuteScalar());
        var chosen = sample(Trials(tx), next);
        Command(tx, "INSERT INTO trials (number, state, params, worker, heartbeat, started) VALUES ($n, 'RUNNING', $p, $w, $t, $t)",
            ("$n", next), ("$p", ToJson(chosen)), ("$w", worker), ("$t", now)).ExecuteNonQuery();
        tx.Commit();
        return (next, chosen);
    }

    /// Running trials whose worker process is gone (same machine) or silent for `StaleAfter`: failed, and queued again.
    private void RecoverLost(SqliteTransaction tx)
    {
        var lost = new List<(int Number, string Params, string Worker)>();
        using (var reader = Command(tx, "SELECT number, params, worker, heartbeat FROM trials WHERE state = 'RUNNING'").ExecuteReader())
            while (reader.Read())
            {
                var worker = reader.IsDBNull(2) ? "" : reader.GetString(2);
                var heartbeat = reader.IsDBNull(3) ? 0 : reader.GetDouble(3);
                if (!WorkerIdentity.IsAlive(worker) || Now() - heartbeat > StaleAfter.TotalSeconds)
                    lost.Add((reader.GetInt32(0), reader.GetString(1), worker));
            }
        foreach (var (number, parameters, worker) in lost)
        {
            Command(tx, "UPDATE trials SET state = 'FAIL', finished = $t, message = $m WHERE number = $n",
                ("$t", Now()), ("$m", $"lost: worker {worker} stopped during the trial; retried"), ("$n", number)).ExecuteNonQuery();
            var next = Convert.ToInt32(Command(tx, "SELECT COALESCE(MAX(number) + 1, 0) FROM trials").ExecuteScalar());
            Command(tx, "INSERT INTO trials (number, state, params, retry_of) VALUES ($n, 'WAITING', $p, $r)",
                ("$n", next), ("$p", parameters), ("$r", number)).ExecuteNonQuery();
        }
    }

    public void Heartbeat(int number) =>
        Write("UPDATE trials SET heartbeat = $t WHERE number = $n AND state = 'RUNNING'", ("$t", Now()), ("$n", number));

    public void Report(int number, int step, double value) =>
        Write("INSERT INTO intermediate (number, step, value) VALUES ($n, $s, $v) ON CONFLICT (number, step) DO UPDATE SET value = $v; " +
              "UPDATE trials SET heartbeat = $t WHERE number = $n", ("$n", number), ("$s", step), ("$v", value), ("$t", Now()));

    public void Finish(int number, TrialState state, double? value, string? message) =>
        Write("UPDATE trials SET state = $s, value = $v, finished = $t, message = COALESCE($m, message) WHERE number = $n",
            ("$s", state.ToString().ToUpperInvariant()), ("$v", value), ("$t", Now()), ("$m", message), ("$n", number));

    private void Write(string sql, params (string Name, object? Value)[] args)
    {
        using var tx = _db.BeginTransaction();
        Command(tx, sql, args).ExecuteNonQuery();
        tx.Commit();
    }

    private SqliteCommand Command(SqliteTransaction? tx, string sql, params (string Name, object? Value)[] args)
    {
        var command = _db.CreateCommand();
        command.Transaction = tx;
        command.CommandText = sql;
        foreach (var (name, value) in args) command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return command;
    }

    private static void Execute(SqliteConnection db, string sql)
    {
        using var command = db.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public static string ToJson(IReadOnlyDictionary<string, JsonNode?> values)
    {
        var o = new JsonObject();
        foreach (var (k, v) in values) o[k] = v?.DeepClone();
        return o.ToJsonString();
    }

    private static double Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;

    public void Dispose() => _db.Dispose();
}

/// `host:pid:start-time` of a worker process; on the same host it tells whether that process still runs.
public static class WorkerIdentity
{
    public static string Current { get; } = Of(Process.GetCurrentProcess());

    private static string Of(Process p) => $"{Environment.MachineName}:{p.Id}:{new DateTimeOffset(p.StartTime.ToUniversalTime()).ToUnixTimeSeconds()}";

    public static bool IsAlive(string worker)
    {
        var parts = worker.Split(':');
        if (parts.Length != 3 || !int.TryParse(parts[1], out var pid)) return false;
        if (parts[0] != Environment.MachineName) return true;   // another machine: only the heartbeat tells
        try
        {
            using var p = Process.GetProcessById(pid);
            return Of(p) == worker;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }
}
