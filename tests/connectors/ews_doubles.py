"""An EWS endpoint double for the Exchange tests: recorded-style SOAP answers over requests_mock.

The answers follow the shapes in Microsoft's EWS reference (GetFolder with a
``t:Folder``/``t:CalendarFolder``, FindItem with a ``CalendarView`` answered by
``m:RootFolder``/``t:Items``/``t:CalendarItem``, SOAP faults with
``m:ResponseCode`` and ``t:MessageXml`` for ``ErrorServerBusy``). ``EwsServer``
dispatches on the SOAP operation in the request body, like exchangelib's own
offline tests, and records every operation so tests can count round trips.

It refuses what a real server refuses a delegate: a request without the
``ExchangeImpersonation`` header is the service account acting as itself, which
holds Reviewer rights on each user's Calendar folder only (what docs/calendars-ews.md
grants), so GetFolder or FindItem on any other folder, the mailbox root included,
answers ``ErrorAccessDenied`` as a per-message error, as Exchange does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ENDPOINT = "https://mail.example.se/EWS/Exchange.asmx"

HEAD = """<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
  <s:Header>
    <h:ServerVersionInfo MajorVersion="15" MinorVersion="1" MajorBuildNumber="2507"
      MinorBuildNumber="6" Version="V2017_07_11"
      xmlns:h="http://schemas.microsoft.com/exchange/services/2006/types"
      xmlns="http://schemas.microsoft.com/exchange/services/2006/types"
      xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
      xmlns:xsd="http://www.w3.org/2001/XMLSchema"/>
  </s:Header>
  <s:Body xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
      xmlns:xsd="http://www.w3.org/2001/XMLSchema">"""
TAIL = """
  </s:Body>
</s:Envelope>"""
NS = (
    'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
    'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"'
)


def get_folder(distinguished: str) -> str:
    tag, name, klass = {
        "root": ("t:Folder", "Top of Information Store", "IPF.Note"),
        "calendar": ("t:CalendarFolder", "Calendar", "IPF.Appointment"),
    }[distinguished]
    return f"""{HEAD}
    <m:GetFolderResponse {NS}>
      <m:ResponseMessages>
        <m:GetFolderResponseMessage ResponseClass="Success">
          <m:ResponseCode>NoError</m:ResponseCode>
          <m:Folders>
            <{tag}>
              <t:FolderId Id="AAMkAD{distinguished}=" ChangeKey="AQAAABYA{distinguished}"/>
              <t:ParentFolderId Id="AAMkADparent=" ChangeKey="AQAAAA=="/>
              <t:FolderClass>{klass}</t:FolderClass>
              <t:DisplayName>{name}</t:DisplayName>
              <t:TotalCount>3</t:TotalCount>
              <t:ChildFolderCount>0</t:ChildFolderCount>
              <t:EffectiveRights>
                <t:CreateAssociated>true</t:CreateAssociated>
                <t:CreateContents>true</t:CreateContents>
                <t:CreateHierarchy>true</t:CreateHierarchy>
                <t:Delete>true</t:Delete>
                <t:Modify>true</t:Modify>
                <t:Read>true</t:Read>
              </t:EffectiveRights>
            </{tag}>
          </m:Folders>
        </m:GetFolderResponseMessage>
      </m:ResponseMessages>
    </m:GetFolderResponse>{TAIL}"""


def calendar_item(
    item_id: str,
    start: str,
    end: str,
    *,
    subject: str = "Meeting",
    uid: str | None = None,
    all_day: bool = False,
    free_busy: str = "Busy",
    response: str = "Organizer",
    sensitivity: str = "Normal",
    cancelled: bool = False,
    categories: tuple[str, ...] = (),
    organizer: tuple[str, str, str] | None = ("Alice", "alice@example.se", "SMTP"),
    item_type: str = "Single",
    recurrence_id: str | None = None,
    time_zone: str = "W. Europe Standard Time",
) -> str:
    """One ``t:CalendarItem`` as FindItem returns it with the requested properties."""
    parts = [
        f'<t:ItemId Id="AAMkAD{item_id}=" ChangeKey="DwAAABYA{item_id}"/>',
        f"<t:Subject>{subject}</t:Subject>",
        f"<t:Sensitivity>{sensitivity}</t:Sensitivity>",
    ]
    if categories:
        parts.append(
            "<t:Categories>"
            + "".join(f"<t:String>{c}</t:String>" for c in categories)
            + "</t:Categories>"
        )
    parts.append(f"<t:UID>{uid or item_id.upper() + '-UID'}</t:UID>")
    if recurrence_id:
        parts.append(f"<t:RecurrenceId>{recurrence_id}</t:RecurrenceId>")
    parts += [
        f"<t:Start>{start}</t:Start>",
        f"<t:End>{end}</t:End>",
        f"<t:IsAllDayEvent>{str(all_day).lower()}</t:IsAllDayEvent>",
        f"<t:LegacyFreeBusyStatus>{free_busy}</t:LegacyFreeBusyStatus>",
        f"<t:IsCancelled>{str(cancelled).lower()}</t:IsCancelled>",
        f"<t:CalendarItemType>{item_type}</t:CalendarItemType>",
        f"<t:MyResponseType>{response}</t:MyResponseType>",
    ]
    zone = f'Id="{time_zone}" Name="(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna"'
    parts += [f"<t:StartTimeZone {zone}/>", f"<t:EndTimeZone {zone}/>"]
    if organizer:
        name, address, routing = organizer
        parts.append(
            f"<t:Organizer><t:Mailbox><t:Name>{name}</t:Name>"
            f"<t:EmailAddress>{address}</t:EmailAddress>"
            f"<t:RoutingType>{routing}</t:RoutingType></t:Mailbox></t:Organizer>"
        )
    return "<t:CalendarItem>" + "".join(parts) + "</t:CalendarItem>"


def find_item(items: list[str]) -> str:
    return f"""{HEAD}
    <m:FindItemResponse {NS}>
      <m:ResponseMessages>
        <m:FindItemResponseMessage ResponseClass="Success">
          <m:ResponseCode>NoError</m:ResponseCode>
          <m:RootFolder TotalItemsInView="{len(items)}" IncludesLastItemInRange="true">
            <t:Items>{"".join(items)}</t:Items>
          </m:RootFolder>
        </m:FindItemResponseMessage>
      </m:ResponseMessages>
    </m:FindItemResponse>{TAIL}"""


def soap_fault(code: str, message: str, back_off_ms: int | None = None) -> str:
    """A SOAP fault as Exchange sends it for impersonation and throttling errors."""
    xml = ""
    if back_off_ms is not None:
        xml = (
            '<t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">'
            f'<t:Value Name="BackOffMilliseconds">{back_off_ms}</t:Value></t:MessageXml>'
        )
    return f"""{HEAD}
    <s:Fault>
      <faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:{code}</faultcode>
      <faultstring xml:lang="en-US">{message}</faultstring>
      <detail>
        <e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">{code}</e:ResponseCode>
        <e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">{message}</e:Message>
        {xml}
      </detail>
    </s:Fault>{TAIL}"""


def error_message(operation: str, code: str, text: str) -> str:
    """A per-message error (ResponseClass="Error"), e.g. a mailbox that does not exist."""
    return f"""{HEAD}
    <m:{operation}Response {NS}>
      <m:ResponseMessages>
        <m:{operation}ResponseMessage ResponseClass="Error">
          <m:MessageText>{text}</m:MessageText>
          <m:ResponseCode>{code}</m:ResponseCode>
          <m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>
        </m:{operation}ResponseMessage>
      </m:ResponseMessages>
    </m:{operation}Response>{TAIL}"""


def get_item(items: list[str]) -> str:
    """GetItem's answer: one response message per requested item, in request order."""
    messages = "".join(
        f"""
        <m:GetItemResponseMessage ResponseClass="Success">
          <m:ResponseCode>NoError</m:ResponseCode>
          <m:Items>{item}</m:Items>
        </m:GetItemResponseMessage>"""
        for item in items
    )
    return f"""{HEAD}
    <m:GetItemResponse {NS}>
      <m:ResponseMessages>{messages}
      </m:ResponseMessages>
    </m:GetItemResponse>{TAIL}"""


def only_id(item: str) -> str:
    """The item as FindItem returns it with an IdOnly shape."""
    found = re.search(r"<t:ItemId [^>]*/>", item)
    assert found is not None
    return f"<t:CalendarItem>{found.group(0)}</t:CalendarItem>"


@dataclass
class EwsServer:
    """Answers SOAP requests by operation; ``queue`` overrides give one-off answers in order."""

    items: list[str] = field(default_factory=list)
    queue: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    operations: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)
    delegate_folders: tuple[str, ...] = ("calendar",)  # Reviewer on the Calendar folder only

    def push(self, operation: str, status: int, body: str) -> None:
        self.queue.setdefault(operation, []).append((status, body))

    def __call__(self, request: Any, context: Any) -> str:
        body = request.text if isinstance(request.text, str) else request.body.decode()
        match = re.search(r"<s:Body><m:(\w+)", body)
        operation = match.group(1) if match else "?"
        self.operations.append(operation)
        self.bodies.append(body)
        context.headers["Content-Type"] = "text/xml; charset=utf-8"
        pending = self.queue.get(operation)
        if pending:
            context.status_code, text = pending.pop(0)
            return text
        context.status_code = 200
        if self._denied(operation, body):
            return error_message(
                operation, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
            )
        if operation == "GetFolder":
            folder = re.search(r'DistinguishedFolderId Id="(\w+)"', body)
            return get_folder(folder.group(1) if folder else "root")
        if operation == "FindItem":
            if "<t:BaseShape>IdOnly</t:BaseShape>" in body and "AdditionalProperties" not in body:
                return find_item([only_id(i) for i in self.items])
            return find_item(self.items)
        if operation == "GetItem":
            by_id = {re.search(r'ItemId Id="([^"]+)"', i).group(1): i for i in self.items}  # type: ignore[union-attr]
            wanted = re.findall(r'<t:ItemId Id="([^"]+)"', body)
            return get_item([by_id[w] for w in wanted])
        context.status_code = 500
        return soap_fault("ErrorInvalidOperation", f"operation {operation} not in the double")

    def _denied(self, operation: str, body: str) -> bool:
        """A delegate (no impersonation header) opening a folder it holds no rights on."""
        if "<t:ExchangeImpersonation>" in body or operation not in ("GetFolder", "FindItem"):
            return False
        folders = re.findall(r'<t:DistinguishedFolderId Id="(\w+)"', body)
        by_id = re.search(r"<t:FolderId ", body)
        return bool(by_id) or not folders or any(f not in self.delegate_folders for f in folders)
