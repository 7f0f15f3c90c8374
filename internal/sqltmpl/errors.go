package sqltmpl

import (
	"errors"
	"strings"
)

// Sentinels for the caller's errors.Is: an *InvalidParamsError wraps
// ErrInvalidParams, an *UnknownTemplateError wraps ErrUnknownTemplate.
// Neither is retryable: the question must change.
var (
	ErrInvalidParams   = errors.New("invalid template parameters")
	ErrUnknownTemplate = errors.New("unknown template")
)

// UnknownTemplateError names a template that does not exist and lists the
// ones that do.
type UnknownTemplateError struct {
	Name  string
	Known string // comma-separated names
}

func (e *UnknownTemplateError) Error() string {
	return "unknown template " + quoteClip(e.Name) + "; the templates are: " + e.Known
}

func (e *UnknownTemplateError) Unwrap() error { return ErrUnknownTemplate }

// Problem is one thing wrong with the parameters of a Render.
type Problem struct {
	Param  string `json:"param,omitempty"` // "" for the object as a whole
	Msg    string `json:"message"`
	Reason string `json:"reason"` // a Reason* constant
}

func (p Problem) String() string {
	if p.Param == "" {
		return p.Msg
	}
	return p.Param + ": " + p.Msg
}

// InvalidParamsError lists every problem of a Render's parameters at once,
// so that one corrected call can succeed.
type InvalidParamsError struct {
	Template string
	Problems []Problem
}

func (e *InvalidParamsError) Error() string {
	var b strings.Builder
	b.WriteString("template ")
	b.WriteString(e.Template)
	b.WriteString(": invalid parameters: ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

func (e *InvalidParamsError) Unwrap() error { return ErrInvalidParams }
