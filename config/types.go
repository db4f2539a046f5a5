package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Size is a number of bytes. In the file it is an integer or a string such as
// "50MB", "512KiB" or "1048576"; units are 1024-based and case-insensitive.
type Size int64

var sizeUnits = map[string]int64{
	"": 1, "B": 1,
	"K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10,
	"M": 1 << 20, "MB": 1 << 20, "MIB": 1 << 20,
	"G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30,
}

// ParseSize parses a size such as "50MB", "512KiB" or "1048576".
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	mult, ok := sizeUnits[strings.ToUpper(strings.TrimSpace(t[i:]))]
	if i == 0 || !ok {
		return 0, fmt.Errorf("%q is not a size (examples: \"50MB\", \"512KB\", \"1GB\", \"1048576\")", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > (1<<63-1)/mult {
		return 0, fmt.Errorf("%q is not a size (too large)", s)
	}
	return Size(n * mult), nil
}

// String renders s in the largest unit that divides it exactly, in a form
// ParseSize reads back.
func (s Size) String() string {
	units := []struct {
		n    Size
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}}
	for _, u := range units {
		if s > 0 && s%u.n == 0 {
			return strconv.FormatInt(int64(s/u.n), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// MarshalText implements encoding.TextMarshaler.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// UnmarshalTOML implements toml.Unmarshaler: a TOML integer is a number of
// bytes, a string goes through ParseSize.
func (s *Size) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return fmt.Errorf("%d is not a size (negative)", v)
		}
		*s = Size(v)
		return nil
	case string:
		return s.UnmarshalText([]byte(v))
	}
	return fmt.Errorf("expected a size such as \"50MB\" or an integer, got %s", typeName(v))
}

// Duration is a time.Duration written as a string such as "90s", "5m" or
// "4h30m" (time.ParseDuration syntax).
type Duration time.Duration

// Duration returns d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }

// String is time.Duration's String without the trailing zero units: "5m",
// not "5m0s".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("%q is not a duration (examples: \"90s\", \"5m\", \"4h\")", b)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalTOML implements toml.Unmarshaler. A bare integer is refused: its
// unit would be a guess.
func (d *Duration) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		return d.UnmarshalText([]byte(v))
	case int64:
		return fmt.Errorf("%d is not a duration: give a unit, e.g. \"%ds\" or \"%dm\"", v, v, v)
	}
	return fmt.Errorf("expected a duration such as \"5m\", got %s", typeName(v))
}
