package imap

import (
	"github.com/emersion/go-imap/v2"

	"pombo/storage"
)

// ENVELOPE and BODYSTRUCTURE from the parse stored at delivery.

// toEnvelope converts a stored envelope; its address lists share one array.
func toEnvelope(e *storage.Envelope) *imap.Envelope {
	lists := [...][]storage.Address{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc}
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	all := make([]imap.Address, n)
	var out [len(lists)][]imap.Address
	k := 0
	for i, l := range lists {
		if len(l) == 0 {
			continue // nil: imapserver then writes NIL, or From for Sender and Reply-To
		}
		for j, a := range l {
			all[k+j] = imap.Address{Name: a.Name, Mailbox: a.Mailbox, Host: a.Host}
		}
		out[i] = all[k : k+len(l) : k+len(l)]
		k += len(l)
	}
	return &imap.Envelope{
		Date:      e.Date,
		Subject:   e.Subject,
		From:      out[0],
		Sender:    out[1],
		ReplyTo:   out[2],
		To:        out[3],
		Cc:        out[4],
		Bcc:       out[5],
		InReplyTo: e.InReplyTo,
		MessageID: e.MessageID,
	}
}

func disposition(p *storage.BodyPart) *imap.BodyStructureDisposition {
	if p.Disposition == "" {
		return nil
	}
	return &imap.BodyStructureDisposition{Value: p.Disposition, Params: p.DispositionParams}
}

func toBodyStructure(p *storage.BodyPart) imap.BodyStructure {
	if len(p.Children) > 0 || p.Type == "multipart" {
		mp := &imap.BodyStructureMultiPart{
			Subtype: p.Subtype,
			Extended: &imap.BodyStructureMultiPartExt{
				Params:      p.Params,
				Disposition: disposition(p),
				Language:    p.Language,
				Location:    p.Location,
			},
		}
		for i := range p.Children {
			mp.Children = append(mp.Children, toBodyStructure(&p.Children[i]))
		}
		if len(mp.Children) == 0 {
			// Never sent: storage guarantees a child; imapserver would panic.
			mp.Children = []imap.BodyStructure{&imap.BodyStructureSinglePart{Type: "text", Subtype: "plain",
				Text: &imap.BodyStructureText{}, Extended: &imap.BodyStructureSinglePartExt{}}}
		}
		return mp
	}
	size := p.Size
	if size > 1<<32-1 {
		size = 1<<32 - 1
	}
	sp := &imap.BodyStructureSinglePart{
		Type:        p.Type,
		Subtype:     p.Subtype,
		Params:      p.Params,
		ID:          p.ID,
		Description: p.Description,
		Encoding:    p.Encoding,
		Size:        uint32(size),
		Extended: &imap.BodyStructureSinglePartExt{
			Disposition: disposition(p),
			Language:    p.Language,
			Location:    p.Location,
		},
	}
	if sp.Type == "" {
		sp.Type, sp.Subtype = "text", "plain"
	}
	switch {
	case p.Message != nil && p.Envelope != nil:
		sp.MessageRFC822 = &imap.BodyStructureMessageRFC822{
			Envelope:      toEnvelope(p.Envelope),
			BodyStructure: toBodyStructure(p.Message),
			NumLines:      p.Lines,
		}
	case sp.Type == "text":
		sp.Text = &imap.BodyStructureText{NumLines: p.Lines}
	}
	return sp
}
