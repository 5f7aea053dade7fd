using System.Globalization;
using System.Text;

namespace R1Sharp.Templates;

public enum TokenKind { Text, VariableBegin, VariableEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, End }

public readonly record struct JinjaToken(TokenKind Kind, string Value, int Line);

/// Splits a template into text and tag tokens, applying Hugging Face's chat-template settings
/// (trim_blocks and lstrip_blocks on) and the `-`/`+` whitespace controls. Comments are dropped.
public static class JinjaLexer
{
    private static readonly string[] Operators =
        ["**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"];

    public static List<JinjaToken> Tokenize(string source)
    {
        // Jinja's defaults: newlines normalised to \n, one trailing newline dropped.
        source = source.Replace("\r\n", "\n").Replace('\r', '\n');
        if (source.EndsWith('\n')) source = source[..^1];
        var tokens = new List<JinjaToken>();
        int pos = 0, line = 1;
        bool stripNext = false, trimNewline = false;
        var text = new StringBuilder();

        void FlushText(bool stripEnd, bool lstrip)
        {
            var s = text.ToString();
            text.Clear();
            if (stripEnd) s = s.TrimEnd();
            else if (lstrip)
            {
                var lastNewline = s.LastIndexOf('\n');
                var tail = s[(lastNewline + 1)..];
                var atLineStart = lastNewline >= 0 || tokens.Count == 0;
                if (atLineStart && tail.All(c => c is ' ' or '\t')) s = s[..(lastNewline + 1)];
            }
            if (s.Length > 0) tokens.Add(new JinjaToken(TokenKind.Text, s, line));
        }

        while (pos < source.Length)
        {
            var open = IndexOfTag(source, pos);
            var chunk = source[pos..(open < 0 ? source.Length : open)];
            if (stripNext) chunk = chunk.TrimStart();
            else if (trimNewline) chunk = chunk.StartsWith("\r\n") ? chunk[2..] : chunk.StartsWith('\n') ? chunk[1..] : chunk;
            stripNext = trimNewline = false;
            text.Append(chunk);
            line += Count(source, pos, open < 0 ? source.Length : open);
            if (open < 0) break;

            var kind = source[open + 1];
            pos = open + 2;
            var modifier = pos < source.Length && source[pos] is '-' or '+' ? source[pos] : '\0';
            if (modifier != '\0') pos++;
            FlushText(stripEnd: modifier == '-', lstrip: kind != '{' && modifier != '+');

            if (kind == '#')
            {
                var close = source.IndexOf("#}", pos, StringComparison.Ordinal);
                if (close < 0) throw new JinjaException($"line {line}: unclosed comment");
                stripNext = source[close - 1] == '-';
                trimNewline = source[close - 1] != '+';
                line += Count(source, pos, close + 2);
                pos = close + 2;
                continue;
            }
            tokens.Add(new JinjaToken(kind == '{' ? TokenKind.VariableBegin : TokenKind.BlockBegin, "", line));
            var end = kind == '{' ? "}}" : "%}";
            pos = TokenizeTag(source, pos, end, tokens, ref line, out var closeModifier);
            tokens.Add(new JinjaToken(kind == '{' ? TokenKind.VariableEnd : TokenKind.BlockEnd, "", line));
            stripNext = closeModifier == '-';
            trimNewline = kind == '%' && closeModifier != '+';
        }
        FlushText(false, false);
        tokens.Add(new JinjaToken(TokenKind.End, "", line));
        return tokens;
    }

    private static int IndexOfTag(string s, int from)
    {
        for (int i = s.IndexOf('{', from); i >= 0 && i + 1 < s.Length; i = s.IndexOf('{', i + 1))
            if (s[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    private static int Count(string s, int from, int to)
    {
        int n = 0;
        for (int i = from; i < to; i++) if (s[i] == '\n') n++;
        return n;
    }

    /// Expression tokens up to the closing delimiter; returns the position after it.
    /// As Jinja, the closing delimiter only counts outside brackets (`{{ {'a': {'b': 1}} }}`).
    private static int TokenizeTag(string s, int pos, string end, List<JinjaToken> tokens, ref int line, out char closeModifier)
    {
        var depth = 0;
        while (true)
        {
            while (pos < s.Length && char.IsWhiteSpace(s[pos])) { if (s[pos] == '\n') line++; pos++; }
            if (pos >= s.Length) throw new JinjaException($"line {line}: tag not closed with '{end}'");
            foreach (var modifier in depth == 0 ? ["-", "+", ""] : Array.Empty<string>())
            {
                if (string.CompareOrdinal(s, pos, modifier + end, 0, modifier.Length + end.Length) != 0) continue;
                closeModifier = modifier.Length > 0 ? modifier[0] : '\0';
                return pos + modifier.Length + end.Length;
            }
            var c = s[pos];
            if (char.IsLetter(c) || c == '_')
            {
                int start = pos;
                while (pos < s.Length && (char.IsLetterOrDigit(s[pos]) || s[pos] == '_')) pos++;
                tokens.Add(new JinjaToken(TokenKind.Name, s[start..pos], line));
            }
            else if (char.IsDigit(c))
            {
                int start = pos;
                while (pos < s.Length && (char.IsDigit(s[pos]) || s[pos] == '_')) pos++;
                var isFloat = pos + 1 < s.Length && s[pos] == '.' && char.IsDigit(s[pos + 1]);
                if (isFloat) { pos++; while (pos < s.Length && char.IsDigit(s[pos])) pos++; }
                if (pos < s.Length && s[pos] is 'e' or 'E' && pos + 1 < s.Length && (char.IsDigit(s[pos + 1]) || s[pos + 1] is '+' or '-'))
                {
                    isFloat = true;
                    pos += 2;
                    while (pos < s.Length && char.IsDigit(s[pos])) pos++;
                }
                tokens.Add(new JinjaToken(isFloat ? TokenKind.Float : TokenKind.Integer, s[start..pos].Replace("_", ""), line));
            }
            else if (c is '\'' or '"')
            {
                pos = ReadString(s, pos, out var value, ref line);
                tokens.Add(new JinjaToken(TokenKind.String, value, line));
            }
            else
            {
                var op = Operators.FirstOrDefault(o => string.CompareOrdinal(s, pos, o, 0, o.Length) == 0)
                    ?? throw new JinjaException($"line {line}: unexpected character '{c}' in a tag");
                tokens.Add(new JinjaToken(TokenKind.Operator, op, line));
                pos += op.Length;
                if (op is "(" or "[" or "{") depth++;
                else if (op is ")" or "]" or "}") depth = Math.Max(0, depth - 1);
            }
        }
    }

    private static int ReadString(string s, int pos, out string value, ref int line)
    {
        var quote = s[pos++];
        var sb = new StringBuilder();
        while (true)
        {
            if (pos >= s.Length) throw new JinjaException($"line {line}: unterminated string");
            var c = s[pos++];
            if (c == quote) break;
            if (c == '\n') line++;
            if (c != '\\') { sb.Append(c); continue; }
            if (pos >= s.Length) throw new JinjaException($"line {line}: unterminated string");
            var e = s[pos++];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case '0': sb.Append('\0'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'u' when pos + 4 <= s.Length:
                    sb.Append((char)int.Parse(s.AsSpan(pos, 4), NumberStyles.HexNumber)); pos += 4; break;
                case 'x' when pos + 2 <= s.Length:
                    sb.Append((char)int.Parse(s.AsSpan(pos, 2), NumberStyles.HexNumber)); pos += 2; break;
                case '\\' or '\'' or '"': sb.Append(e); break;
                case '\n': line++; break;
                default: sb.Append('\\').Append(e); break;
            }
        }
        value = sb.ToString();
        return pos;
    }
}
